package registry

import (
	"context"

	"github.com/wharf/wharf/internal/metadata"
)

// EmitEvents records events for the webhooks subscribed to them, for
// what no write of the metadata store records by itself: a garbage
// collection's or a retention run's report (metadata.EventGC,
// EventRetention, with the report as Detail), a golden base that moved
// (EventBaseUpdated). An event with no Repo goes to every hook
// subscribed to its action, whatever its namespace: put in its Detail only
// what every namespace's owners may read (totals), and emit one event per
// repository for what names them. Pushes, deletes, tag moves and pulls are recorded
// by the store in their own transactions. Without a store that keeps
// webhooks it does nothing.
func (s *Service) EmitEvents(ctx context.Context, events ...metadata.Event) error {
	ws, ok := s.meta.(metadata.WebhookStore)
	if !ok || len(events) == 0 {
		return nil
	}
	return ws.RecordEvents(ctx, events)
}
