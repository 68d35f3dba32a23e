package registry

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// TagTarget returns the digest tag points at in repo. Unlike GetManifest
// it reads no manifest and counts no pull: it is for tools that compare
// tags (an import's final pass), not for clients pulling.
func (s *Service) TagTarget(ctx context.Context, repo, tag string) (digest.Digest, error) {
	if err := ValidateName(repo); err != nil {
		return "", err
	}
	if err := ValidateTag(tag); err != nil {
		return "", Errorf(ErrManifestUnknown, "%v", err)
	}
	var d digest.Digest
	var err error
	if res, ok := s.meta.(manifestResolver); ok {
		d, err = res.ResolveTag(ctx, repo, tag)
	} else {
		var t *metadata.TagInfo
		if t, err = s.meta.GetTagInfo(ctx, repo, tag); err == nil {
			d = t.Digest
		}
	}
	if errors.Is(err, metadata.ErrNotFound) {
		return "", s.manifestUnknown(ctx, repo, tag)
	}
	return d, err
}
