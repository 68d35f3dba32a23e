package registry

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// UploadLockCount is the number of ids in the upload lock map, for tests
// that check it stays bounded.
func (s *Service) UploadLockCount() int { return s.uploadLocks.len() }

// LayerChains exposes layerChains to the lineage benchmarks, which seed
// a database with the chains pushes would have recorded.
var LayerChains = layerChains

// RetentionDeleteTag is a retention run's deletion of tag, decided when it
// pointed at d.
func (s *Service) RetentionDeleteTag(ctx context.Context, repo, tag string, d digest.Digest) error {
	return s.retentionDelete(ctx, repo, RetentionItem{Tag: tag, Digest: d, Delete: true})
}

// WithoutLineage makes s detect and record no lineage, as a store that
// keeps none would: the lineage benchmarks' baseline, which keeps every
// other capability of the store (policies, quotas, tag rules, webhooks).
func WithoutLineage(s *Service) *Service {
	s.lineage = nil
	return s
}
