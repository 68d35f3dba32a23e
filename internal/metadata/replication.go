package metadata

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// ReplicationRule copies a namespace's repositories matching Pattern to
// another registry.
type ReplicationRule struct {
	ID        int64
	Namespace string
	// Pattern is a repository name, or a prefix ending in "*".
	Pattern string
	// URL is the destination registry's base URL.
	URL string
	// DestPrefix is put before each repository name at the destination.
	DestPrefix string
	Username   string
	// SealedPassword is the destination password as the replicate
	// package sealed it; the store never sees it in clear.
	SealedPassword string
	CreatedBy      string
	CreatedAt      time.Time

	// LastRun is when a copy or reconcile for this rule last finished,
	// LastOK when one last succeeded, LastError why the last one failed
	// ("" when it did not).
	LastRun, LastOK time.Time
	LastError       string
	// Failures counts the rule's failed attempts and reconciles.
	Failures int64
	// Pending counts the rule's tasks not yet done, Oldest is when the
	// oldest of them was recorded (zero when none): the rule's lag.
	Pending int64
	Oldest  time.Time
}

// ReplicationTask is one event of a repository owed to one rule: a row
// of replication's outbox.
type ReplicationTask struct {
	ID     int64
	RuleID int64
	// Action is EventPush, EventTag or EventDelete; a delete with
	// neither Digest nor Tag deleted the whole repository.
	Action string
	Repo   string
	Digest digest.Digest
	Tag    string
	// CreatedAt is when the write that caused it committed.
	CreatedAt time.Time
	// Attempts counts the failed attempts so far.
	Attempts    int
	NextAttempt time.Time
	LastError   string
}

// ReplicationStore keeps replication rules, their status and their
// outbox. A store that is a ReplicationStore records, inside the
// transaction of each write that pushes, moves or deletes a tag or a
// manifest, or deletes a repository, a task for every rule whose Pattern matches the repository,
// as a WebhookStore records deliveries: a write that commits has its
// tasks, one that rolls back has none. Workers claim tasks with a lease,
// as webhook deliveries are claimed.
type ReplicationStore interface {
	// CreateReplicationRule stores r and returns its new ID.
	CreateReplicationRule(ctx context.Context, r *ReplicationRule) (int64, error)
	// SetReplicationPassword replaces rule id's sealed password (sealed
	// against the ID, so it is written after the ID is known), or
	// returns ErrNotFound.
	SetReplicationPassword(ctx context.Context, id int64, sealed string) error
	// GetReplicationRule returns rule id, or ErrNotFound.
	GetReplicationRule(ctx context.Context, id int64) (*ReplicationRule, error)
	// ListReplicationRules lists namespace's rules ("": every rule) by ID.
	ListReplicationRules(ctx context.Context, namespace string) ([]ReplicationRule, error)
	// DeleteReplicationRule removes rule id, or returns ErrNotFound.
	DeleteReplicationRule(ctx context.Context, id int64) error
	// RecordReplicationRun records a run of rule id finished at `at`:
	// failed with reason, or succeeded when reason is "".
	RecordReplicationRun(ctx context.Context, id int64, at time.Time, reason string) error
	// UpdateReplicationRule replaces rule r.ID's pattern, URL, destination
	// prefix and username (the sealed password stays), or returns
	// ErrNotFound.
	UpdateReplicationRule(ctx context.Context, r *ReplicationRule) error

	// ClaimReplicationTasks leases up to n tasks due at now to worker
	// until until, oldest first, skipping those another worker's live
	// lease holds. A task is due only when no earlier task of the same
	// rule and repository remains, so that each repository's events
	// reach a destination in order.
	ClaimReplicationTasks(ctx context.Context, worker string, now, until time.Time, n int) ([]ReplicationTask, error)
	// FinishReplicationTask removes task id, done, if worker still holds
	// its lease; ErrConflict if it does not.
	FinishReplicationTask(ctx context.Context, id int64, worker string) error
	// FailReplicationTask records a failed attempt of task id by worker,
	// retried at next; ErrConflict if worker no longer holds its lease.
	FailReplicationTask(ctx context.Context, id int64, worker, reason string, next time.Time) error
	// RenewReplicationClaims extends every lease worker still holds to
	// until and reports how many it extended: the heartbeat of a worker
	// that is copying, so that a short lease frees a dead worker's tasks
	// soon while a live one's long copy is not claimed twice.
	RenewReplicationClaims(ctx context.Context, worker string, until time.Time) (int, error)
}
