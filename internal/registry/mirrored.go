package registry

import "context"

type mirrorWriteKey struct{}

// WithMirrorWrite returns ctx for the pull-through cache storing what an
// upstream served: a manifest is accepted before its blobs, which are
// fetched when a client first asks for them, as with sparse manifests.
func WithMirrorWrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, mirrorWriteKey{}, true)
}

func mirrorWrite(ctx context.Context) bool {
	on, _ := ctx.Value(mirrorWriteKey{}).(bool)
	return on
}
