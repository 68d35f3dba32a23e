package registry

import (
	"context"

	"github.com/wharf/wharf/internal/metadata"
)

// RetentionRunKind is the Kind of retention's run reports.
const RetentionRunKind = "retention"

// JobRuns lists the recorded runs of the background jobs of kind (GCRunKind,
// RetentionRunKind, or "" for every kind), newest first, with how many
// there are: one list for the admin page and the API.
func (s *Service) JobRuns(ctx context.Context, kind string, offset, limit int) ([]Run, int, error) {
	rs, ok := s.meta.(metadata.RunStore)
	if !ok {
		return nil, 0, Errorf(ErrUnsupported, "this registry's database keeps no job runs")
	}
	return rs.ListRuns(ctx, kind, offset, limit)
}
