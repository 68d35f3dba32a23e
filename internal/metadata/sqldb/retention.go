package sqldb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var (
	_ metadata.RetentionStore = (*DB)(nil)
	_ metadata.Leaser         = (*DB)(nil)
)

// TagUses lists repo's tags with their push and pull times.
func (db *DB) TagUses(ctx context.Context, repo string) ([]metadata.TagUse, error) {
	var id int64
	if err := db.queryRow(ctx, `SELECT id FROM repositories WHERE name = ?`, repo).Scan(&id); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	rows, err := db.query(ctx, `SELECT name, digest, pushed_at, last_pulled FROM tags WHERE repo_id = ? ORDER BY name`, id)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []metadata.TagUse{}
	for rows.Next() {
		var t metadata.TagUse
		var pushed, pulled int64
		if err := rows.Scan(&t.Name, &t.Digest, &pushed, &pulled); err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", repo, err)
		}
		t.PushedAt = fromNanos(pushed)
		if pulled != 0 {
			t.LastPulled = fromNanos(pulled)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ManifestNodes lists repo's manifests with their subjects and children:
// two ordered scans merged, rather than a query per manifest.
func (db *DB) ManifestNodes(ctx context.Context, repo string) ([]metadata.ManifestNode, error) {
	rows, err := db.query(ctx, `SELECT m.digest, m.created_at, m.subject FROM manifests m
		JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? ORDER BY m.digest`, repo)
	if err != nil {
		return nil, fmt.Errorf("list manifests of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []metadata.ManifestNode{}
	index := map[digest.Digest]int{}
	for rows.Next() {
		var m metadata.ManifestNode
		var created int64
		if err := rows.Scan(&m.Digest, &created, &m.Subject); err != nil {
			return nil, fmt.Errorf("list manifests of %s: %w", repo, err)
		}
		m.CreatedAt = fromNanos(created)
		index[m.Digest] = len(out)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	refs, err := db.query(ctx, `SELECT f.parent, f.child FROM manifest_refs f
		JOIN repositories r ON r.id = f.repo_id WHERE r.name = ? AND f.kind = 'manifest' ORDER BY f.parent, f.child`, repo)
	if err != nil {
		return nil, fmt.Errorf("list index children of %s: %w", repo, err)
	}
	defer refs.Close()
	for refs.Next() {
		var parent, child digest.Digest
		if err := refs.Scan(&parent, &child); err != nil {
			return nil, fmt.Errorf("list index children of %s: %w", repo, err)
		}
		// A manifest stored between the two scans is missed by the first;
		// its children wait for the next run.
		if i, ok := index[parent]; ok {
			out[i].Children = append(out[i].Children, child)
		}
	}
	return out, refs.Err()
}

// retentionKind is the job_runs kind of retention's runs.
const retentionKind = "retention"

// retentionSummary is what a retention run counts beyond the columns
// every job's run has, in job_runs.summary (migration 19 writes the same
// fields).
type retentionSummary struct {
	Actor            string `json:"actor"`
	Scope            string `json:"scope"`
	Repositories     int64  `json:"repositories"`
	DeletedTags      int64  `json:"deleted_tags"`
	DeletedManifests int64  `json:"deleted_manifests"`
	Failures         int64  `json:"failures"`
}

// AddRetentionRun records a run among the job runs, kind "retention": its
// report goes in details, its counts in the summary.
func (db *DB) AddRetentionRun(ctx context.Context, run *metadata.RetentionRun) error {
	sum, err := json.Marshal(retentionSummary{Actor: run.Actor, Scope: run.Scope, Repositories: run.Repositories,
		DeletedTags: run.DeletedTags, DeletedManifests: run.DeletedManifests, Failures: run.Failures})
	if err != nil {
		return err
	}
	outcome, errText := metadata.RunOK, ""
	if run.Failures > 0 {
		outcome, errText = metadata.RunFailed, fmt.Sprintf("%d deletions failed", run.Failures)
	}
	report := run.Report
	if report == nil {
		report = []byte{}
	}
	return db.inTx(ctx, func(tx *stmtTx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO job_runs (kind, started_by, replica, started_at, finished_at, outcome,
			manifests, error_text, summary, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			retentionKind, run.Trigger, run.Replica, nanos(run.StartedAt), nanos(run.FinishedAt), outcome,
			run.DeletedManifests, errText, string(sum), report).Scan(&run.ID)
		if err != nil {
			return fmt.Errorf("record retention run: %w", err)
		}
		return nil
	})
}

// ListRetentionRuns lists runs newest first.
func (db *DB) ListRetentionRuns(ctx context.Context, before int64, n int) ([]metadata.RetentionRun, error) {
	q := `SELECT id, started_at, finished_at, started_by, replica, summary, details FROM job_runs WHERE kind = ?`
	args := []any{retentionKind}
	if before > 0 {
		q += ` AND id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC`
	if n > 0 {
		q += ` LIMIT ?`
		args = append(args, n)
	}
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list retention runs: %w", err)
	}
	defer rows.Close()
	out := []metadata.RetentionRun{}
	for rows.Next() {
		var r metadata.RetentionRun
		var started, finished int64
		var summary string
		if err := rows.Scan(&r.ID, &started, &finished, &r.Trigger, &r.Replica, &summary, &r.Report); err != nil {
			return nil, fmt.Errorf("list retention runs: %w", err)
		}
		var sum retentionSummary
		if err := json.Unmarshal([]byte(summary), &sum); err != nil {
			return nil, fmt.Errorf("retention run %d: summary: %w", r.ID, err)
		}
		r.Actor, r.Scope, r.Repositories, r.DeletedTags, r.DeletedManifests, r.Failures =
			sum.Actor, sum.Scope, sum.Repositories, sum.DeletedTags, sum.DeletedManifests, sum.Failures
		r.StartedAt, r.FinishedAt = fromNanos(started), fromNanos(finished)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ClaimLease takes lease name for holder: an update that only a lapsed
// lease lets through, or an insert of the first claim that a concurrent
// first claim makes a no-op.
func (db *DB) ClaimLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	claimed := false
	err := db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx, `UPDATE job_leases SET holder = ?, lease_until = ?
			WHERE name = ? AND lease_until <= ?`, holder, nanos(until), name, nanos(now))
		if err != nil {
			return fmt.Errorf("claim lease %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			claimed = true
			return nil
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO job_leases (name, holder, lease_until, started_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, name, holder, nanos(until), nanos(now))
		if err != nil {
			return fmt.Errorf("claim lease %s: %w", name, err)
		}
		n, _ := res.RowsAffected()
		claimed = n == 1
		return nil
	})
	return claimed, err
}
