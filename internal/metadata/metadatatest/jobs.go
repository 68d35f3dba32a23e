package metadatatest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// RunJobs runs the contract of metadata.JobLeaser and metadata.RunStore.
func RunJobs(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.Store)
	}{
		{"AcquireJob_OneHolderUntilTheLeaseLapsesOrIsReleased", testAcquireJobExclusive},
		{"AcquireJob_NotBeforeTheLastStartIsOldEnough", testAcquireJobSchedule},
		{"RenewJob_OnlyTheHolderAndNotAfterLosingIt", testRenewJob},
		{"AcquireJob_ConcurrentOneWins", testAcquireJobConcurrent},
		{"Runs_StartFinishListNewestFirstPerKind", testRunsRoundTrip},
		{"StartRun_MarksRunsLeftRunningAbandoned", testRunsAbandoned},
		{"BeginEndJobRun_LeaseAndRunTogether", testBeginEndJobRun},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if _, ok := s.(metadata.JobLeaser); !ok {
				t.Fatalf("%T is not a metadata.JobLeaser", s)
			}
			if _, ok := s.(metadata.RunStore); !ok {
				t.Fatalf("%T is not a metadata.RunStore", s)
			}
			tc.test(t, s)
		})
	}
}

// farFuture lets an acquire ignore the schedule (within the nanoseconds
// an int64 holds).
var farFuture = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

func acquire(t *testing.T, l metadata.JobLeaser, holder string, now time.Time, ttl time.Duration, startedBefore time.Time) bool {
	t.Helper()
	ok, err := l.AcquireJob(t.Context(), "gc", holder, now, now.Add(ttl), startedBefore)
	if err != nil {
		t.Fatalf("AcquireJob(%s): %v", holder, err)
	}
	return ok
}

func testAcquireJobExclusive(t *testing.T, s metadata.Store) {
	l := s.(metadata.JobLeaser)
	now := timeAt(0)
	if !acquire(t, l, "a", now, time.Minute, farFuture) {
		t.Fatal("a could not take a lease nobody ever held")
	}
	if acquire(t, l, "b", now.Add(30*time.Second), time.Minute, farFuture) {
		t.Fatal("b took the lease a holds")
	}
	if acquire(t, l, "a", now.Add(30*time.Second), time.Minute, farFuture) {
		t.Fatal("a took its own live lease again (a second run beside its first)")
	}
	// A lapsed lease is free: its holder died.
	if !acquire(t, l, "b", now.Add(time.Minute), time.Minute, farFuture) {
		t.Fatal("b could not take a lapsed lease")
	}
	if err := l.ReleaseJob(t.Context(), "gc", "a"); err != nil {
		t.Fatal(err)
	}
	if acquire(t, l, "c", now.Add(61*time.Second), time.Minute, farFuture) {
		t.Fatal("a's release ended b's lease")
	}
	if err := l.ReleaseJob(t.Context(), "gc", "b"); err != nil {
		t.Fatal(err)
	}
	if !acquire(t, l, "c", now.Add(61*time.Second), time.Minute, farFuture) {
		t.Fatal("c could not take a released lease")
	}
	// Leases of other jobs are apart.
	if ok, err := l.AcquireJob(t.Context(), "retention", "a", now.Add(61*time.Second), now.Add(2*time.Minute), farFuture); err != nil || !ok {
		t.Fatalf("AcquireJob(retention) beside a gc lease = %v, %v", ok, err)
	}
}

func testAcquireJobSchedule(t *testing.T, s metadata.Store) {
	l := s.(metadata.JobLeaser)
	start := timeAt(0)
	const interval = time.Hour
	due := func(now time.Time) time.Time { return now.Add(-interval) }
	if !acquire(t, l, "a", start, time.Minute, due(start)) {
		t.Fatal("a job never started is not due")
	}
	if err := l.ReleaseJob(t.Context(), "gc", "a"); err != nil {
		t.Fatal(err)
	}
	// Free, but started less than an interval ago: not due, on any holder.
	for _, h := range []string{"a", "b"} {
		if now := start.Add(30 * time.Minute); acquire(t, l, h, now, time.Minute, due(now)) {
			t.Fatalf("%s took the lease half an interval after the last start", h)
		}
	}
	if now := start.Add(interval + time.Second); !acquire(t, l, "b", now, time.Minute, due(now)) {
		t.Fatal("b could not take the lease once due")
	}
	if err := l.ReleaseJob(t.Context(), "gc", "b"); err != nil {
		t.Fatal(err)
	}
	// The schedule restarts from b's start.
	if now := start.Add(interval + 30*time.Minute); acquire(t, l, "a", now, time.Minute, due(now)) {
		t.Fatal("the schedule did not restart from the last start")
	}
}

func testRenewJob(t *testing.T, s metadata.Store) {
	l := s.(metadata.JobLeaser)
	ctx := t.Context()
	now := timeAt(0)
	acquire(t, l, "a", now, time.Minute, farFuture)
	if ok, err := l.RenewJob(ctx, "gc", "b", now.Add(time.Hour)); err != nil || ok {
		t.Fatalf("RenewJob by a non-holder = %v, %v; want false", ok, err)
	}
	if ok, err := l.RenewJob(ctx, "gc", "a", now.Add(2*time.Minute)); err != nil || !ok {
		t.Fatalf("RenewJob by the holder = %v, %v; want true", ok, err)
	}
	if acquire(t, l, "b", now.Add(90*time.Second), time.Minute, farFuture) {
		t.Fatal("b took a lease renewed past now")
	}
	if !acquire(t, l, "b", now.Add(2*time.Minute), time.Minute, farFuture) {
		t.Fatal("b could not take the lease once the renewal lapsed")
	}
	if ok, err := l.RenewJob(ctx, "gc", "a", now.Add(time.Hour)); err != nil || ok {
		t.Fatalf("RenewJob by a holder that lost the lease = %v, %v; want false", ok, err)
	}
}

func testAcquireJobConcurrent(t *testing.T, s metadata.Store) {
	l := s.(metadata.JobLeaser)
	now := timeAt(0)
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ok, err := l.AcquireJob(t.Context(), "gc", string(rune('a'+i)), now, now.Add(time.Minute), farFuture)
			if err != nil {
				t.Errorf("AcquireJob: %v", err)
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of 8 concurrent acquirers took the lease; want 1", won.Load())
	}
}

func testRunsRoundTrip(t *testing.T, s metadata.Store) {
	rs := s.(metadata.RunStore)
	ctx := t.Context()
	start := timeAt(0)
	var runs []metadata.Run
	for i := range 3 {
		r := metadata.Run{Kind: "gc", Trigger: "schedule", Replica: "host-1", StartedAt: start.Add(time.Duration(i) * time.Hour)}
		if err := rs.StartRun(ctx, &r); err != nil {
			t.Fatalf("StartRun: %v", err)
		}
		if r.ID == 0 || r.Outcome != metadata.RunRunning {
			t.Fatalf("StartRun left ID %d, outcome %q", r.ID, r.Outcome)
		}
		r.FinishedAt, r.Outcome = r.StartedAt.Add(time.Second), metadata.RunOK
		r.Manifests, r.Blobs, r.Links, r.Bytes, r.Summary = int64(i), 10+int64(i), 20, 1<<40, `{"scanned":5}`
		if i == 2 {
			r.Outcome, r.Error = metadata.RunFailed, "blob store: timeout"
		}
		if err := rs.FinishRun(ctx, &r); err != nil {
			t.Fatalf("FinishRun: %v", err)
		}
		runs = append(runs, r)
	}
	other := metadata.Run{Kind: "retention", Trigger: "admin:alice", StartedAt: start}
	if err := rs.StartRun(ctx, &other); err != nil {
		t.Fatal(err)
	}
	got, total, err := rs.ListRuns(ctx, "gc", 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(got) != 2 {
		t.Fatalf("ListRuns(gc, 0, 2) = %d runs of %d; want 2 of 3", len(got), total)
	}
	for i, want := range []metadata.Run{runs[2], runs[1]} {
		if !runEqual(got[i], want) {
			t.Errorf("run %d = %+v\nwant %+v", i, got[i], want)
		}
	}
	got, _, err = rs.ListRuns(ctx, "gc", 2, 2)
	if err != nil || len(got) != 1 || !runEqual(got[0], runs[0]) {
		t.Fatalf("ListRuns(gc, 2, 2) = %+v, %v; want the oldest run", got, err)
	}
	got, total, err = rs.ListRuns(ctx, "retention", 0, 10)
	if err != nil || total != 1 || len(got) != 1 || got[0].Outcome != metadata.RunRunning || !got[0].FinishedAt.IsZero() || got[0].Trigger != "admin:alice" {
		t.Fatalf("ListRuns(retention) = %+v, %d, %v; want the one running run", got, total, err)
	}
	// Kind "" lists every kind's runs together, newest first.
	got, total, err = rs.ListRuns(ctx, "", 0, 10)
	if err != nil || total != 4 || len(got) != 4 || got[0].Kind != "retention" || !runEqual(got[3], runs[0]) {
		t.Fatalf("ListRuns(\"\") = %+v, %d, %v; want the 4 runs of both kinds", got, total, err)
	}
	if err := rs.FinishRun(ctx, &metadata.Run{ID: 999999, Kind: "gc"}); err == nil {
		t.Error("FinishRun of an unknown run succeeded")
	}
}

func runEqual(a, b metadata.Run) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Trigger == b.Trigger && a.Replica == b.Replica &&
		a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) && a.Outcome == b.Outcome &&
		a.Manifests == b.Manifests && a.Blobs == b.Blobs && a.Links == b.Links && a.Bytes == b.Bytes &&
		a.Error == b.Error && a.Summary == b.Summary
}

func testRunsAbandoned(t *testing.T, s metadata.Store) {
	rs := s.(metadata.RunStore)
	ctx := t.Context()
	dead := metadata.Run{Kind: "gc", StartedAt: timeAt(0)}
	otherKind := metadata.Run{Kind: "retention", StartedAt: timeAt(0)}
	for _, r := range []*metadata.Run{&dead, &otherKind} {
		if err := rs.StartRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	next := metadata.Run{Kind: "gc", StartedAt: timeAt(time.Hour)}
	if err := rs.StartRun(ctx, &next); err != nil {
		t.Fatal(err)
	}
	got, _, err := rs.ListRuns(ctx, "gc", 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("ListRuns = %+v, %v", got, err)
	}
	if got[0].Outcome != metadata.RunRunning || got[1].Outcome != metadata.RunAbandoned {
		t.Errorf("outcomes = %q, %q; want running (the new run), abandoned (the dead one)", got[0].Outcome, got[1].Outcome)
	}
	if got, _, _ := rs.ListRuns(ctx, "retention", 0, 10); len(got) != 1 || got[0].Outcome != metadata.RunRunning {
		t.Errorf("a gc start touched a retention run: %+v", got)
	}
}

// BeginJobRun takes the lease and records the run, or, when the lease is
// held, does neither; EndJobRun records the end and frees the lease for
// the next holder.
func testBeginEndJobRun(t *testing.T, s metadata.Store) {
	jr, ok := s.(metadata.JobRunner)
	if !ok {
		t.Fatalf("%T is not a metadata.JobRunner", s)
	}
	rs := s.(metadata.RunStore)
	ctx := t.Context()
	now := timeAt(0)
	a := metadata.Run{Kind: "gc", Trigger: "schedule", Replica: "host-a", StartedAt: now}
	if took, err := jr.BeginJobRun(ctx, "a", now, now.Add(time.Minute), farFuture, &a); err != nil || !took {
		t.Fatalf("BeginJobRun(a) = %v, %v; want the lease nobody held", took, err)
	}
	if a.ID == 0 || a.Outcome != metadata.RunRunning {
		t.Fatalf("a's run = %+v; want an id, running", a)
	}
	b := metadata.Run{Kind: "gc", Trigger: "schedule", Replica: "host-b", StartedAt: now.Add(time.Second)}
	if took, err := jr.BeginJobRun(ctx, "b", now.Add(time.Second), now.Add(time.Minute), farFuture, &b); err != nil || took {
		t.Fatalf("BeginJobRun(b) while a holds the lease = %v, %v; want refused", took, err)
	}
	if got, total, err := rs.ListRuns(ctx, "gc", 0, 10); err != nil || total != 1 || got[0].ID != a.ID || got[0].Outcome != metadata.RunRunning {
		t.Fatalf("runs after b was refused = %+v (%d), %v; want a's run alone, running", got, total, err)
	}

	a.FinishedAt, a.Outcome, a.Blobs, a.Bytes, a.Summary = now.Add(2*time.Second), metadata.RunOK, 3, 300, `{"scanned_blobs":9}`
	if err := jr.EndJobRun(ctx, "a", &a); err != nil {
		t.Fatalf("EndJobRun(a): %v", err)
	}
	if got, _, err := rs.ListRuns(ctx, "gc", 0, 1); err != nil || len(got) != 1 || !runEqual(got[0], a) {
		t.Fatalf("a's run after EndJobRun = %+v, %v; want %+v", got, err, a)
	}
	b.StartedAt = now.Add(3 * time.Second)
	if took, err := jr.BeginJobRun(ctx, "b", b.StartedAt, b.StartedAt.Add(time.Minute), farFuture, &b); err != nil || !took {
		t.Fatalf("BeginJobRun(b) after a ended = %v, %v; want the lease a released", took, err)
	}
	if b.ID == a.ID {
		t.Errorf("b's run got a's id %d", a.ID)
	}
	wantErr(t, "EndJobRun of a run never started", jr.EndJobRun(ctx, "a", &metadata.Run{Kind: "gc", ID: b.ID + 100}), metadata.ErrNotFound)
	if took, err := jr.BeginJobRun(ctx, "c", b.StartedAt, b.StartedAt.Add(time.Minute), farFuture, &metadata.Run{Kind: "gc"}); err != nil || took {
		t.Errorf("BeginJobRun(c) while b holds the lease = %v, %v; want refused", took, err)
	}
}
