package server

import (
	"context"
	"crypto/rand"
	"errors"

	"github.com/wharf/wharf/internal/registry"
)

// applyRetention deletes what the retention= policies name, at start and
// then every cfg.Retention.Interval, until ctx ends. Every replica asks;
// the lease in the database lets one run per interval (ScheduledRetention).
func (s *Server) applyRetention(ctx context.Context) {
	every := s.cfg.Retention.Interval
	if every <= 0 {
		return
	}
	// The holder names this process in the lease row, for whoever reads it.
	holder := "serve-" + rand.Text()[:12]
	run := func() {
		r, err := s.registry.ScheduledRetention(ctx, holder, every)
		switch {
		case errors.Is(err, registry.ErrUnsupported):
			s.log.Info("retention not run: the database keeps no retention state")
		case err != nil && ctx.Err() == nil:
			s.log.Warn("retention run failed", "err", err)
		case r != nil && r.Failures > 0:
			s.log.Warn("retention run had failures", "run", r.ID, "failures", r.Failures)
		}
	}
	run()
	repeat(ctx, every, run)
}

// What `wharf retention` needs of the registry package, which main does
// not import.
type (
	RetentionPlan = registry.RetentionPlan
	RetentionItem = registry.RetentionItem
	RetentionRun  = registry.RetentionRun
)

// RunRetentionOffline runs retention over pattern as the offline actor.
func (r *Registry) RunRetentionOffline(ctx context.Context, pattern string) (*RetentionRun, error) {
	return r.RunRetention(registry.WithActor(ctx, OfflineActor), pattern, "manual")
}
