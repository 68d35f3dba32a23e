package replicate

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wharf/wharf/internal/egress"
	"github.com/wharf/wharf/internal/metadata"
)

// Options configure a Service's worker.
type Options struct {
	// MaxAttempts failed attempts of a task give it up: its failure stays
	// in the rule's status and the next reconcile repairs what it missed
	// (a queue stuck behind one task would hold back its repository's
	// later events for good).
	MaxAttempts int
	// Backoff is the first retry's delay, doubled per retry up to an hour.
	Backoff time.Duration
	// Lease is how long a claim on a task lasts unless renewed: a replica
	// killed mid-copy holds its tasks that long, then another takes them.
	// A live worker renews its claims every third of it (RenewClaims), so
	// a copy that outlasts it is not claimed twice.
	Lease time.Duration
	// Parallel bounds the tasks copied at once by one replica.
	Parallel int
	// Transport carries the requests to destinations, SourceTransport
	// those to the source (nil: http.DefaultTransport, refusing internal
	// destinations unless AllowInternal; SourceTransport nil: Transport
	// as given).
	Transport, SourceTransport http.RoundTripper
	// AllowInternal lets rules name, and copies reach, destinations on
	// this host or its private network (egress.Internal).
	AllowInternal bool
	// Now is the clock of retries, leases and status (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxAttempts < 1 {
		o.MaxAttempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	// The source is this registry, named by its configuration, not by a
	// user: it is never guarded.
	if o.SourceTransport == nil {
		o.SourceTransport = o.Transport
	}
	if o.SourceTransport == nil {
		o.SourceTransport = http.DefaultTransport
	}
	if o.Transport == nil && !o.AllowInternal {
		o.Transport = egress.Transport(http.DefaultTransport.(*http.Transport))
	}
	if o.Parallel < 1 {
		o.Parallel = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// batch is how many tasks one round claims; at most one per rule and
// repository is due at a time.
const batch = 32

// maxBackoff caps the doubling of retry delays.
const maxBackoff = time.Hour

// mountMemory is how many blobs a Service remembers the destination
// repository of, for cross-repository mounts.
const mountMemory = 100_000

// ReplicateDue claims the tasks due now, copies or deletes them at their
// rules' destinations, and reports how many it claimed. Each task is done
// once, or retried after a delay that doubles each time; the
// MaxAttempts-th failure gives it up to the reconcile.
func (s *Service) ReplicateDue(ctx context.Context) (int, error) {
	now := s.opts.Now()
	ts, err := s.store.ClaimReplicationTasks(ctx, s.worker, now, now.Add(s.opts.Lease), batch)
	if err != nil || len(ts) == 0 {
		return 0, err
	}
	// The whole batch is renewed, not only the copies running: the tasks
	// waiting for a slot are claimed as well.
	defer s.heartbeat(ctx)()
	rules := map[int64]*metadata.ReplicationRule{}
	for _, t := range ts {
		if _, ok := rules[t.RuleID]; ok {
			continue
		}
		r, err := s.store.GetReplicationRule(ctx, t.RuleID)
		if errors.Is(err, metadata.ErrNotFound) {
			rules[t.RuleID] = nil // deleted since: its tasks went with it
			continue
		}
		if err != nil {
			return 0, err
		}
		rules[t.RuleID] = r
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.opts.Parallel)
	errs := make([]error, len(ts))
	for i, t := range ts {
		r := rules[t.RuleID]
		if r == nil {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = s.attempt(ctx, *r, t)
		})
	}
	wg.Wait()
	return len(ts), errors.Join(errs...)
}

// RenewClaims extends the leases of the tasks this worker holds to a
// lease from now, and reports how many it extended; the heartbeat of
// ReplicateDue calls it every third of a lease while a batch runs.
func (s *Service) RenewClaims(ctx context.Context) (int, error) {
	return s.store.RenewReplicationClaims(ctx, s.worker, s.opts.Now().Add(s.opts.Lease))
}

// heartbeat renews this worker's claims until the returned stop is
// called. A renewal that fails is logged and tried again at the next
// beat: the lease has two more beats to go before it lapses.
func (s *Service) heartbeat(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(s.opts.Lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := s.RenewClaims(ctx); err != nil && ctx.Err() == nil {
					s.log.WarnContext(ctx, "replication claims not renewed", "err", err)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// attempt applies t to r's destination once and records the outcome. An
// error is the store's: the destination's failures are the task's,
// recorded in it and in the rule's status.
func (s *Service) attempt(ctx context.Context, r metadata.ReplicationRule, t metadata.ReplicationTask) error {
	applyErr := s.applyTask(ctx, r, t)
	if ctx.Err() != nil {
		// Shutting down: the claim lapses and the task is done again.
		return nil
	}
	now := s.opts.Now()
	reason := ""
	if applyErr != nil {
		reason = applyErr.Error()
		s.stats.of(r.ID).failed.Add(1)
	} else {
		s.stats.of(r.ID).done.Add(1)
	}
	if err := s.store.RecordReplicationRun(ctx, r.ID, now, reason); err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return err
	}
	var err error
	switch giveUp := t.Attempts+1 >= s.opts.MaxAttempts || errors.Is(applyErr, ErrDeleteUnsupported); {
	case applyErr == nil:
		err = s.store.FinishReplicationTask(ctx, t.ID, s.worker)
	case giveUp:
		s.log.WarnContext(ctx, "replication task given up", "rule", r.ID, "repo", t.Repo, "action", t.Action,
			"attempts", t.Attempts+1, "err", applyErr)
		err = s.store.FinishReplicationTask(ctx, t.ID, s.worker)
	default:
		delay := s.opts.Backoff << min(t.Attempts, 30)
		if delay <= 0 || delay > maxBackoff {
			delay = maxBackoff
		}
		s.log.InfoContext(ctx, "replication task failed", "rule", r.ID, "repo", t.Repo, "action", t.Action,
			"attempt", t.Attempts+1, "retry_in", delay, "err", applyErr)
		err = s.store.FailReplicationTask(ctx, t.ID, s.worker, reason, now.Add(delay))
	}
	if errors.Is(err, metadata.ErrConflict) {
		return nil // the lease lapsed and another worker has the task
	}
	return err
}

// applyTask copies a push's digest under its tag (or by digest), or
// deletes a tag, a manifest or a whole repository. A push whose manifest is gone from the
// source since is done: its delete is the next task.
func (s *Service) applyTask(ctx context.Context, r metadata.ReplicationRule, t metadata.ReplicationTask) error {
	c, err := s.copier(r)
	if err != nil {
		return err
	}
	switch t.Action {
	case metadata.EventPush, metadata.EventTag:
		ref, to := t.Digest.String(), t.Tag
		if ref == "" {
			ref = t.Tag
		}
		if to == "" {
			to = ref
		}
		_, err = c.CopyAs(ctx, t.Repo, ref, to)
		if errors.Is(err, ErrSourceGone) {
			return nil
		}
		return err
	case metadata.EventDelete:
		ref := t.Tag
		if ref == "" {
			ref = t.Digest.String()
		}
		if ref == "" {
			return c.DeleteRepository(ctx, t.Repo)
		}
		return c.Delete(ctx, t.Repo, ref)
	}
	return nil
}

// Run replicates until ctx ends: round after round while there is work,
// then every poll; and reconciles a rule as soon as RequestReconcile asks.
func (s *Service) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		s.drain(ctx)
		select {
		case <-ctx.Done():
			return
		case id := <-s.reconcileNow:
			if err := s.ReconcileRule(ctx, id); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "replication reconcile failed", "rule", id, "err", err)
			}
		case <-t.C:
		}
	}
}

// drain runs rounds while they find tasks due, and until one fails.
func (s *Service) drain(ctx context.Context) {
	n, err := 1, error(nil)
	for n > 0 && err == nil {
		if n, err = s.ReplicateDue(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "replication round failed", "err", err)
		}
	}
}

// RequestReconcile asks this process's Run to reconcile rule id soon,
// and reports false when too many requests wait already.
func (s *Service) RequestReconcile(id int64) bool {
	select {
	case s.reconcileNow <- id:
		return true
	default:
		return false
	}
}

// ReconcileLease names the lease of the scheduled reconcile.
const ReconcileLease = "replication-reconcile"

// ScheduledReconcile reconciles every rule if no replica has within
// interval: the lease, as long as the interval, lets one replica run it
// per interval. It reports whether this one did.
func (s *Service) ScheduledReconcile(ctx context.Context, l metadata.Leaser, holder string, interval time.Duration) (bool, error) {
	now := s.opts.Now()
	won, err := l.ClaimLease(ctx, ReconcileLease, holder, now, now.Add(interval))
	if err != nil || !won {
		return false, err
	}
	return true, s.ReconcileAll(ctx)
}
