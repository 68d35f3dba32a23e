package metadata

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// TagUse is a tag with the times retention rules look at.
type TagUse struct {
	Name       string
	Digest     digest.Digest
	PushedAt   time.Time
	LastPulled time.Time // zero when never pulled
}

// ManifestNode is a manifest with what holds it in place: the index
// entries it lists and the subject it refers to.
type ManifestNode struct {
	Digest    digest.Digest
	CreatedAt time.Time
	Subject   digest.Digest
	// Children are the manifests an index lists.
	Children []digest.Digest
}

// RetentionRun is the report of one retention run.
type RetentionRun struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt time.Time
	// Trigger is "schedule" or "manual"; Actor who asked for a manual run.
	Trigger string
	Actor   string
	// Replica names the process that ran it, as a garbage collection's
	// run report does.
	Replica string
	// Scope is the pattern the run covered ("*" for a scheduled run).
	Scope            string
	Repositories     int64
	DeletedTags      int64
	DeletedManifests int64
	Failures         int64
	// Report is the run's detail (each deletion and its reason) as the
	// registry wrote it; the store keeps it opaque.
	Report []byte
}

// RetentionStore is a Store that retention can ask for a repository's
// tags and manifests and record its runs in.
type RetentionStore interface {
	// TagUses lists repo's tags in name order; ErrNotFound if repo does not exist.
	TagUses(ctx context.Context, repo string) ([]TagUse, error)
	// ManifestNodes lists repo's manifests in digest order.
	ManifestNodes(ctx context.Context, repo string) ([]ManifestNode, error)
	// AddRetentionRun records a run and sets its ID.
	AddRetentionRun(ctx context.Context, run *RetentionRun) error
	// ListRetentionRuns lists up to n runs, newest first, with IDs below
	// before (0: from the newest).
	ListRetentionRuns(ctx context.Context, before int64, n int) ([]RetentionRun, error)
}

// Leaser hands out named leases, so that of several processes sharing a
// database one at a time runs a scheduled job. A lease is a row, claimed
// by a conditional update, so it holds through a transaction pooler.
type Leaser interface {
	// ClaimLease makes holder the holder of lease name until until, if no
	// lease is live at now (one lapses at its until), and reports whether
	// it did. A holder's own live lease refuses it too: a scheduled job
	// claims a lease as long as its interval, and must not run again on
	// the same replica before it lapses.
	ClaimLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
}
