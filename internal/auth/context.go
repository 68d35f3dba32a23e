package auth

import "context"

type subjectKey struct{}

// WithSubject returns ctx carrying the authenticated caller, which the
// server's middleware sets once per request for every handler below it.
func WithSubject(ctx context.Context, sub Subject) context.Context {
	return context.WithValue(ctx, subjectKey{}, sub)
}

// SubjectFrom returns the caller set by WithSubject, or the anonymous
// subject.
func SubjectFrom(ctx context.Context) Subject {
	sub, _ := ctx.Value(subjectKey{}).(Subject)
	return sub
}
