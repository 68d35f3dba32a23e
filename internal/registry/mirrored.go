package registry

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

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

// DeleteUntaggedManifest deletes manifest d of repo if it is still
// untagged and no index lists it, and reports whether it did: how the
// pull-through cache drops the platforms of an index it evicted, which
// another cached index may still list.
func (s *Service) DeleteUntaggedManifest(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	gc, ok := s.meta.(metadata.Collector)
	if !ok {
		return false, Errorf(ErrUnsupported, "this registry's database cannot delete untagged manifests")
	}
	deleted, err := gc.DeleteUntaggedManifest(ctx, metadata.ManifestRef{Repo: repo, Digest: d}, s.opts.Now())
	if deleted {
		s.manifests.drop(repo, d)
		s.auditDelete(ctx, "manifest", repo, d.String())
	}
	return deleted, err
}
