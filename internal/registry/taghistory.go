package registry

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// TagChange is one recorded move or delete of a tag.
type TagChange = metadata.TagChange

// How a tag changed (TagChange.Via), for WithTagVia.
const (
	ViaPush      = metadata.ViaPush
	ViaFloating  = metadata.ViaFloating
	ViaRollback  = metadata.ViaRollback
	ViaRetention = metadata.ViaRetention
	ViaDelete    = metadata.ViaDelete
	ViaUI        = metadata.ViaUI
)

// TagHistory lists repo's recorded changes of tag ("" for every tag),
// newest first, skipping offset and at most n (n <= 0: all), with the
// total. ErrUnsupported when the store keeps no history.
func (s *Service) TagHistory(ctx context.Context, repo, tag string, offset, n int) ([]TagChange, int, error) {
	if err := ValidateName(repo); err != nil {
		return nil, 0, err
	}
	if tag != "" {
		if err := ValidateTag(tag); err != nil {
			return nil, 0, Errorf(ErrTagInvalid, "%v", err)
		}
	}
	h, ok := s.meta.(metadata.TagHistory)
	if !ok {
		return nil, 0, Errorf(ErrUnsupported, "this registry's database keeps no tag history")
	}
	out, total, err := h.TagChanges(ctx, repo, tag, offset, n)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, 0, Errorf(ErrNameUnknown, "repository %s not found", repo).withDetail(map[string]any{"name": repo})
	}
	return out, total, err
}

// RestoreTag points tag of repo at manifest d again, recorded in the
// history as a rollback: a deleted tag comes back and a moved one goes
// back, as long as the manifest is still stored. An immutable tag that
// points elsewhere is not moved.
func (s *Service) RestoreTag(ctx context.Context, repo, tag string, d digest.Digest) (*PutManifestResult, error) {
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	if err := ValidateTag(tag); err != nil {
		return nil, Errorf(ErrTagInvalid, "%v", err)
	}
	if err := d.Validate(); err != nil {
		return nil, Errorf(ErrDigestInvalid, "digest %q: %v", d, err)
	}
	m, err := s.meta.GetManifest(ctx, repo, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, Errorf(ErrManifestUnknown, "manifest %s is not in %s (any more): nothing to restore %s to", d, repo, tag).
			withDetail(map[string]any{"digest": d.String()})
	}
	if err != nil {
		return nil, err
	}
	// Through the push path, so that every rule of a tag write holds
	// (immutability, floating tags) and the references are checked again
	// in case the manifest goes while this runs.
	res, err := s.PutManifest(WithTagVia(ctx, metadata.ViaRollback), repo, tag, m.MediaType, m.Content, nil)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "tag restored", "user", Actor(ctx), "repository", repo, "tag", tag, "digest", d)
	return res, nil
}

// PruneTagHistory deletes the history records past their window, for the
// janitor of serve. It returns how many went.
func (s *Service) PruneTagHistory(ctx context.Context) (int64, error) {
	h, ok := s.meta.(metadata.TagHistory)
	if !ok {
		return 0, nil
	}
	return h.PruneTagHistory(ctx, s.opts.Now())
}
