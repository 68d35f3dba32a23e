package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// GCRunKind is the Kind of garbage collection's run reports.
const GCRunKind = "gc"

// Run is the report of a job's run, as the UI and the API show it.
type Run = metadata.Run

// Defaults of the garbage collection that wharf serve schedules.
const (
	DefaultGCInterval    = time.Hour
	DefaultGCUntaggedAge = 24 * time.Hour
)

// gcLeaseTTL is how long a run's lease lasts unless renewed; the run
// renews it every third of that. A replica that dies mid-run holds the
// job up for at most this long. One that stalls longer (a long pause)
// loses the lease and may overlap the next holder's run, which costs
// work, not data: collections are safe beside each other.
const gcLeaseTTL = time.Minute

// gcSummaryManifests bounds the manifests a report lists by name.
const gcSummaryManifests = 100

// GCSchedule configures the garbage collection that runs as a job.
type GCSchedule struct {
	// Interval between the starts of scheduled runs, among all replicas
	// (0: no scheduled runs; an admin may still start one).
	Interval time.Duration
	// Grace is as in GCOptions. Runs collect untagged manifests pushed
	// more than UntaggedAge ago (as GCOptions.UntaggedAge); 0 keeps them.
	Grace       time.Duration
	UntaggedAge time.Duration
	// Replica names this process in run reports (a host name).
	Replica string
}

// ErrGCBusy means a collection is running already, here or on another
// replica.
var ErrGCBusy = errors.New("garbage collection: a run is under way")

// GCRuns runs garbage collection as a background job: on a schedule
// (Tick), or when an admin asks (Start, Run). One replica at a time runs
// it, holding a lease in the database that it renews during the run, and
// every run's report is recorded (RunStore) for the admin page, the API
// and the metrics.
type GCRuns struct {
	svc    *Service
	leases metadata.JobLeaser
	runs   metadata.RunStore
	sched  GCSchedule
	// holder is this process's name on the lease: the replica's name and
	// a random suffix, as two processes may share a host.
	holder string

	// running is held by the run of this process, so that a tick and an
	// admin's start cannot overlap here.
	running sync.Mutex
	// bg is the context of runs started by Start, cancelled by Stop.
	bg     context.Context
	stopBg context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	stats GCStats
}

// GCStats counts what this process's runs did, for the metrics.
type GCStats struct {
	Runs           map[string]int64 // by outcome
	BytesReclaimed int64
	LastFinished   time.Time
	LastDuration   time.Duration
}

func newGCRuns(s *Service, sched GCSchedule) *GCRuns {
	l, ok1 := s.meta.(metadata.JobLeaser)
	rs, ok2 := s.meta.(metadata.RunStore)
	if _, ok3 := s.meta.(metadata.Collector); !ok1 || !ok2 || !ok3 {
		return nil
	}
	if sched.Grace <= 0 {
		sched.Grace = DefaultGCGrace
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	g := &GCRuns{svc: s, leases: l, runs: rs, sched: sched, holder: sched.Replica + "/" + hex.EncodeToString(suffix),
		stats: GCStats{Runs: map[string]int64{metadata.RunOK: 0, metadata.RunFailed: 0, metadata.RunAbandoned: 0}}}
	g.bg, g.stopBg = context.WithCancel(context.Background())
	return g
}

// GCRuns returns the garbage collection job, nil if the metadata store
// cannot lease jobs and record their runs.
func (s *Service) GCRuns() *GCRuns { return s.gcRuns }

// Interval is the time between scheduled runs (0: none).
func (g *GCRuns) Interval() time.Duration { return g.sched.Interval }

// options are what each run of the job may collect.
func (g *GCRuns) options() GCOptions {
	return GCOptions{Grace: g.sched.Grace, Untagged: g.sched.UntaggedAge > 0, UntaggedAge: g.sched.UntaggedAge}
}

// Tick runs a collection if one is due: no run started, on any replica,
// within the interval. Replicas call it more often than the interval; the
// lease's recorded start makes all but one of them pass.
func (g *GCRuns) Tick(ctx context.Context) (metadata.Run, bool, error) {
	if g.sched.Interval <= 0 {
		return metadata.Run{}, false, nil
	}
	now := g.svc.opts.Now()
	run, err := g.begin(ctx, "schedule", now, now.Add(-g.sched.Interval))
	if errors.Is(err, ErrGCBusy) {
		return run, false, nil
	}
	if err != nil {
		return run, false, err
	}
	run, _ = g.execute(ctx, run, g.options())
	return run, true, nil
}

// Run runs a collection now, whatever the schedule, and returns its
// report; ErrGCBusy if one is under way.
func (g *GCRuns) Run(ctx context.Context, trigger string) (metadata.Run, error) {
	now := g.svc.opts.Now()
	run, err := g.begin(ctx, trigger, now, now.Add(time.Nanosecond))
	if err != nil {
		return run, err
	}
	run, _ = g.execute(ctx, run, g.options())
	return run, nil
}

// RunWith is Run with opts instead of the schedule's, for `wharf gc`:
// under the same lease as serve's runs, so that it never collects beside
// a replica's run (ErrGCBusy while one is under way), and recorded as a
// run like theirs. A dry run deletes nothing, so it takes no lease and
// records nothing.
func (g *GCRuns) RunWith(ctx context.Context, trigger string, opts GCOptions) (metadata.Run, GCReport, error) {
	if opts.DryRun {
		rep, err := g.svc.CollectGarbage(ctx, opts)
		return metadata.Run{}, rep, err
	}
	now := g.svc.opts.Now()
	run, err := g.begin(ctx, trigger, now, now.Add(time.Nanosecond))
	if err != nil {
		return run, GCReport{}, err
	}
	run, rep := g.execute(ctx, run, opts)
	if run.Outcome != metadata.RunOK {
		return run, rep, fmt.Errorf("garbage collection %s: %s", run.Outcome, run.Error)
	}
	return run, rep, nil
}

// Start is Run in the background: it returns the started run's record
// once the lease is taken, and the run goes on beyond ctx until Stop.
func (g *GCRuns) Start(ctx context.Context, trigger string) (metadata.Run, error) {
	now := g.svc.opts.Now()
	run, err := g.begin(ctx, trigger, now, now.Add(time.Nanosecond))
	if err != nil {
		return run, err
	}
	// The run outlives the request, not its actor.
	bg := WithActor(g.bg, Actor(ctx))
	g.wg.Go(func() { g.execute(bg, run, g.options()) })
	return run, nil
}

// Stop cancels a run that Start began and waits for it to record its end.
func (g *GCRuns) Stop() {
	g.stopBg()
	g.wg.Wait()
}

// List lists the recorded runs of every replica, newest first.
func (g *GCRuns) List(ctx context.Context, offset, limit int) ([]metadata.Run, int, error) {
	return g.runs.ListRuns(ctx, GCRunKind, offset, limit)
}

// Stats returns what this process's runs did.
func (g *GCRuns) Stats() GCStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.stats
	st.Runs = make(map[string]int64, len(g.stats.Runs))
	for k, v := range g.stats.Runs {
		st.Runs[k] = v
	}
	return st
}

// begin takes the lease and records the run's start. The process lock is
// released by execute, or here on failure.
func (g *GCRuns) begin(ctx context.Context, trigger string, now, startedBefore time.Time) (metadata.Run, error) {
	run := metadata.Run{Kind: GCRunKind, Trigger: trigger, Replica: g.sched.Replica, StartedAt: now}
	if !g.running.TryLock() {
		return run, ErrGCBusy
	}
	var ok bool
	var err error
	if jr, isRunner := g.leases.(metadata.JobRunner); isRunner {
		ok, err = jr.BeginJobRun(ctx, g.holder, now, now.Add(gcLeaseTTL), startedBefore, &run)
	} else if ok, err = g.leases.AcquireJob(ctx, GCRunKind, g.holder, now, now.Add(gcLeaseTTL), startedBefore); err == nil && ok {
		if err = g.runs.StartRun(ctx, &run); err != nil {
			g.release(ctx)
		}
	}
	if err == nil && !ok {
		err = ErrGCBusy
	}
	if err != nil {
		g.running.Unlock()
		return run, err
	}
	return run, nil
}

func (g *GCRuns) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := g.leases.ReleaseJob(ctx, GCRunKind, g.holder); err != nil {
		g.svc.log.WarnContext(ctx, "gc lease not released; it lapses by itself", "err", err)
	}
}

// errGCLeaseLost ends a run whose lease another replica took.
var errGCLeaseLost = errors.New("garbage collection: the lease lapsed and another replica took it")

// execute collects while renewing the lease, then records the report.
func (g *GCRuns) execute(ctx context.Context, run metadata.Run, opts GCOptions) (metadata.Run, GCReport) {
	defer g.running.Unlock()
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		g.renew(rctx, cancel)
	}()
	began := time.Now()
	rep, err := g.svc.CollectGarbage(rctx, opts)
	took := time.Since(began)
	cancel(nil)
	<-renewed

	run.FinishedAt = run.StartedAt.Add(took)
	run.Manifests, run.Blobs, run.Links, run.Bytes = int64(len(rep.Manifests)), int64(rep.Blobs), rep.Links, rep.Bytes
	run.Outcome = metadata.RunOK
	switch {
	case errors.Is(context.Cause(rctx), errGCLeaseLost):
		run.Outcome, run.Error = metadata.RunAbandoned, errGCLeaseLost.Error()
	case ctx.Err() != nil:
		run.Outcome, run.Error = metadata.RunAbandoned, "the server stopped during the run"
	case err != nil:
		run.Outcome, run.Error = metadata.RunFailed, err.Error()
	}
	run.Summary = gcSummary(rep, opts)
	g.end(ctx, &run)
	g.mu.Lock()
	g.stats.Runs[run.Outcome]++
	g.stats.BytesReclaimed += run.Bytes
	g.stats.LastFinished, g.stats.LastDuration = time.Now(), took
	g.mu.Unlock()
	g.svc.log.InfoContext(ctx, "gc run finished", "run", run.ID, "trigger", run.Trigger, "outcome", run.Outcome,
		"manifests", run.Manifests, "blobs", run.Blobs, "links", run.Links, "bytes", run.Bytes, "took", took, "err", run.Error)
	return run, rep
}

// end records run's report and releases the lease, in one transaction
// where the store can.
func (g *GCRuns) end(ctx context.Context, run *metadata.Run) {
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer fcancel()
	if jr, ok := g.leases.(metadata.JobRunner); ok {
		err := jr.EndJobRun(fctx, g.holder, run)
		if err == nil {
			return
		}
		g.svc.log.WarnContext(ctx, "gc run report not recorded", "run", run.ID, "err", err)
	} else if err := g.runs.FinishRun(fctx, run); err != nil {
		g.svc.log.WarnContext(ctx, "gc run report not recorded", "run", run.ID, "err", err)
	}
	g.release(ctx)
}

// renew moves the lease out every third of its length until ctx ends,
// and cancels the run if another replica has taken the lease.
func (g *GCRuns) renew(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(gcLeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := g.leases.RenewJob(ctx, GCRunKind, g.holder, g.svc.opts.Now().Add(gcLeaseTTL))
		switch {
		case err != nil && ctx.Err() == nil:
			// The lease still lasts a while; the next renewal may pass.
			g.svc.log.WarnContext(ctx, "gc lease not renewed", "err", err)
		case err == nil && !ok:
			cancel(errGCLeaseLost)
			return
		}
	}
}

// gcSummary is the report's own part: what the counts do not say.
func gcSummary(rep GCReport, opts GCOptions) string {
	sum := struct {
		Scanned     int      `json:"scanned_blobs"`
		Grace       string   `json:"grace"`
		UntaggedAge string   `json:"untagged_age,omitempty"`
		Manifests   []string `json:"manifests,omitempty"`
		More        int      `json:"more_manifests,omitempty"`
		// Yields and Yielded say how often and how long the run paused
		// for pushes (gcpace.go).
		Yields  int    `json:"yields,omitempty"`
		Yielded string `json:"yielded,omitempty"`
	}{Scanned: rep.Scanned, Grace: opts.Grace.String(), Yields: rep.Yields}
	if rep.Yields > 0 {
		sum.Yielded = rep.Yielded.Round(time.Millisecond).String()
	}
	if opts.Untagged {
		sum.UntaggedAge = max(opts.Grace, opts.UntaggedAge).String()
	}
	for i, m := range rep.Manifests {
		if i == gcSummaryManifests {
			sum.More = len(rep.Manifests) - i
			break
		}
		sum.Manifests = append(sum.Manifests, fmt.Sprintf("%s@%s", m.Repo, m.Digest))
	}
	b, _ := json.Marshal(sum)
	return string(b)
}
