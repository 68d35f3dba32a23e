package metadata

import (
	"context"
	"time"
)

// JobLeaser lets one process at a time run a background job (garbage
// collection, retention) among the replicas that share the database. The
// lease is a row, not a session-level advisory lock, so it holds through
// PgBouncer in transaction mode and on SQLite alike; a holder that dies
// stops renewing and its lease lapses.
type JobLeaser interface {
	// AcquireJob makes holder the holder of job name's lease until until,
	// if no live lease (one lasting past now) is held and the job last
	// started before startedBefore, and records now as its start. A job
	// never started counts as started long ago. It reports whether holder
	// took the lease.
	AcquireJob(ctx context.Context, name, holder string, now, until, startedBefore time.Time) (bool, error)
	// RenewJob moves holder's lease out to until, and reports false when
	// holder no longer holds it (it lapsed and another took it).
	RenewJob(ctx context.Context, name, holder string, until time.Time) (bool, error)
	// ReleaseJob ends holder's lease if it still holds it, keeping the
	// recorded start.
	ReleaseJob(ctx context.Context, name, holder string) error
}

// Outcomes of a Run.
const (
	RunRunning   = "running"
	RunOK        = "ok"
	RunFailed    = "failed"
	RunAbandoned = "abandoned" // its replica died or lost the lease mid-run
)

// Run is the report of one run of a background job. The counts are
// generic, so that every kind of job shares them: what a kind counts
// beyond them goes in Summary.
type Run struct {
	ID int64
	// Kind names the job: "gc", "retention".
	Kind string
	// Trigger says what started it: "schedule", or "admin:NAME".
	Trigger string
	// Replica names the process that ran it.
	Replica    string
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	Outcome    string
	Manifests  int64
	Blobs      int64
	Links      int64
	Bytes      int64 // reclaimed
	Error      string
	// Summary is a JSON object of the kind's own details.
	Summary string
}

// JobRunner is a JobLeaser and RunStore that also begins and ends a run
// in one transaction each, rather than two: each commit waits for the
// disk, and a run is short.
type JobRunner interface {
	// BeginJobRun is AcquireJob of the lease named r.Kind and, if holder
	// took it, StartRun(r), in one transaction. It reports whether
	// holder took the lease; if not, nothing is recorded.
	BeginJobRun(ctx context.Context, holder string, now, until, startedBefore time.Time, r *Run) (bool, error)
	// EndJobRun is FinishRun(r) and ReleaseJob of the lease named r.Kind
	// for holder, in one transaction.
	EndJobRun(ctx context.Context, holder string, r *Run) error
}

// RunStore keeps the reports of job runs.
type RunStore interface {
	// StartRun records r (Outcome RunRunning) and sets r.ID. The caller
	// holds the kind's lease, so a run of the kind still recorded as
	// running was left by a replica that died: it is marked abandoned.
	StartRun(ctx context.Context, r *Run) error
	// FinishRun records r's end: its outcome, counts, error and summary.
	FinishRun(ctx context.Context, r *Run) error
	// ListRuns lists kind's runs ("": every kind's), newest first, from
	// offset, at most limit, with the total count of them.
	ListRuns(ctx context.Context, kind string, offset, limit int) ([]Run, int, error)
}
