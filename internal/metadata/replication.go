package metadata

import (
	"context"
	"time"
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
}

// ReplicationStore keeps replication rules and their status.
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
}
