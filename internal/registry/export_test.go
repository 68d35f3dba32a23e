package registry

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// UploadLockCount is the number of ids in the upload lock map, for tests
// that check it stays bounded.
func (s *Service) UploadLockCount() int { return s.uploadLocks.len() }

// RetentionDeleteTag is a retention run's deletion of tag, decided when it
// pointed at d.
func (s *Service) RetentionDeleteTag(ctx context.Context, repo, tag string, d digest.Digest) error {
	return s.retentionDelete(ctx, repo, RetentionItem{Tag: tag, Digest: d, Delete: true})
}
