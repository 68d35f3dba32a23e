package registry

import (
	"context"

	"github.com/wharf/wharf/internal/metadata"
)

type actorKey struct{}

// WithActor returns ctx naming the account a request acts for, so that
// what it stores (a pushed tag) records who did it. The server sets it
// from the authenticated caller; the domain never sees credentials.
func WithActor(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, actorKey{}, user)
}

// Actor returns the account set by WithActor, or "" for an anonymous or
// unauthenticated request.
func Actor(ctx context.Context) string {
	user, _ := ctx.Value(actorKey{}).(string)
	return user
}

type repoFilterKey struct{}

// RepoFilter reports whether the caller may see a repository.
type RepoFilter func(ctx context.Context, repo string) (bool, error)

// WithRepoFilter returns ctx whose listings (the catalog) show only the
// repositories keep accepts, and whose mounts without a source mount only
// from those: callers see only what they may pull.
func WithRepoFilter(ctx context.Context, keep RepoFilter) context.Context {
	return context.WithValue(ctx, repoFilterKey{}, keep)
}

func repoFilter(ctx context.Context) RepoFilter {
	keep, _ := ctx.Value(repoFilterKey{}).(RepoFilter)
	return keep
}

type pullOnlyKey struct{}

// WithPullOnly returns ctx for a caller that may pull from the request's
// repository but not push to it. The server sets it; what such a caller
// reads renews nothing (StatBlob), so that readers cannot keep unused
// links from garbage collection.
func WithPullOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, pullOnlyKey{}, true)
}

func pullOnly(ctx context.Context) bool {
	only, _ := ctx.Value(pullOnlyKey{}).(bool)
	return only
}

// auditDelete writes the one audit line of a delete, whichever way it
// came (OCI API, web UI, Hub API): what went and who asked, from the
// actor the server set ("" on an open registry, where nobody signs in).
// withChangeActor returns ctx whose store writes record the request's
// actor (their delete events and history rows), unless one is set.
func withChangeActor(ctx context.Context) context.Context {
	info := metadata.ChangeInfoOf(ctx)
	if info.Actor != "" {
		return ctx
	}
	info.Actor = Actor(ctx)
	return metadata.WithChangeInfo(ctx, info)
}

func (s *Service) auditDelete(ctx context.Context, kind, repo, ref string) {
	s.log.InfoContext(ctx, "deleted", "user", Actor(ctx), "kind", kind, "repository", repo, "reference", ref)
}
