package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

var (
	_ metadata.JobLeaser = (*DB)(nil)
	_ metadata.RunStore  = (*DB)(nil)
	_ metadata.JobRunner = (*DB)(nil)
)

// acquireJob takes a lease in one statement; its parameters are name,
// holder, until, now, now and startedBefore.
const acquireJob = `INSERT INTO job_leases (name, holder, lease_until, started_at) VALUES (?, ?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until, started_at = excluded.started_at
	WHERE job_leases.lease_until <= ? AND job_leases.started_at < ?`

// releaseJob ends holder's lease of name.
const releaseJob = `UPDATE job_leases SET lease_until = 0 WHERE name = ? AND holder = ?`

// AcquireJob takes the lease in one statement, so that two replicas
// racing for it cannot both win: on PostgreSQL the loser of the insert
// waits for the winner's row and re-checks the condition on it, and
// SQLite has one writer at a time.
func (db *DB) AcquireJob(ctx context.Context, name, holder string, now, until, startedBefore time.Time) (bool, error) {
	if holder == "" {
		return false, fmt.Errorf("acquire job %s: empty holder", name)
	}
	res, err := db.exec(ctx, acquireJob, name, holder, until.UnixNano(), now.UnixNano(), now.UnixNano(), startedBefore.UnixNano())
	return rowChanged(res, err, "acquire job "+name)
}

// RenewJob moves the lease out whether or not it has lapsed meanwhile:
// while holder still holds it, nobody else has taken it.
func (db *DB) RenewJob(ctx context.Context, name, holder string, until time.Time) (bool, error) {
	res, err := db.exec(ctx, `UPDATE job_leases SET lease_until = ? WHERE name = ? AND holder = ?`,
		until.UnixNano(), name, holder)
	return rowChanged(res, err, "renew job "+name)
}

// rowChanged reports whether a conditional write of a lease changed its
// row: a condition that did not hold is no error.
func rowChanged(res sql.Result, err error, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return n > 0, nil
}

// ReleaseJob ends the lease; the holder's name stays, for whoever looks
// at the table.
func (db *DB) ReleaseJob(ctx context.Context, name, holder string) error {
	if _, err := db.exec(ctx, releaseJob, name, holder); err != nil {
		return fmt.Errorf("release job %s: %w", name, err)
	}
	return nil
}

// StartRun records the run and marks as abandoned the kind's runs left
// running, in one transaction.
func (db *DB) StartRun(ctx context.Context, r *metadata.Run) error {
	err := db.inTx(ctx, func(tx *stmtTx) error { return startRun(ctx, tx, r) })
	if err != nil {
		return fmt.Errorf("start %s run: %w", r.Kind, err)
	}
	return nil
}

func startRun(ctx context.Context, tx *stmtTx, r *metadata.Run) error {
	r.Outcome = metadata.RunRunning
	if _, err := tx.ExecContext(ctx,
		`UPDATE job_runs SET outcome = ? WHERE kind = ? AND outcome = ?`,
		metadata.RunAbandoned, r.Kind, metadata.RunRunning); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx,
		`INSERT INTO job_runs (kind, started_by, replica, started_at, outcome) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		r.Kind, r.Trigger, r.Replica, r.StartedAt.UnixNano(), r.Outcome).Scan(&r.ID)
}

// BeginJobRun takes the lease and records the run in one transaction.
func (db *DB) BeginJobRun(ctx context.Context, holder string, now, until, startedBefore time.Time, r *metadata.Run) (bool, error) {
	if holder == "" {
		return false, fmt.Errorf("begin %s run: empty holder", r.Kind)
	}
	var took bool
	err := db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx, acquireJob, r.Kind, holder, until.UnixNano(), now.UnixNano(), now.UnixNano(), startedBefore.UnixNano())
		if took, err = rowChanged(res, err, "acquire job "+r.Kind); err != nil || !took {
			return err
		}
		return startRun(ctx, tx, r)
	})
	if err != nil {
		return false, fmt.Errorf("begin %s run: %w", r.Kind, err)
	}
	return took, nil
}

// EndJobRun records the run's end and releases the lease in one
// transaction.
func (db *DB) EndJobRun(ctx context.Context, holder string, r *metadata.Run) error {
	err := db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx, finishRun, finishRunArgs(r)...)
		if err != nil {
			return err
		}
		if err := expectOne(res, fmt.Sprintf("%s run %d", r.Kind, r.ID)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, releaseJob, r.Kind, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("end %s run %d: %w", r.Kind, r.ID, err)
	}
	return nil
}

// finishRun records a run's end; finishRunArgs are its parameters.
const finishRun = `UPDATE job_runs SET finished_at = ?, outcome = ?, manifests = ?, blobs = ?, links = ?, bytes = ?, error_text = ?, summary = ?
	WHERE id = ?`

func finishRunArgs(r *metadata.Run) []any {
	return []any{r.FinishedAt.UnixNano(), r.Outcome, r.Manifests, r.Blobs, r.Links, r.Bytes, r.Error, r.Summary, r.ID}
}

// FinishRun records the run's end.
func (db *DB) FinishRun(ctx context.Context, r *metadata.Run) error {
	res, err := db.exec(ctx, finishRun, finishRunArgs(r)...)
	if err != nil {
		return fmt.Errorf("finish %s run %d: %w", r.Kind, r.ID, err)
	}
	return expectOne(res, fmt.Sprintf("%s run %d", r.Kind, r.ID))
}

// ListRuns pages through kind's runs by id, which grows with each start.
func (db *DB) ListRuns(ctx context.Context, kind string, offset, limit int) ([]metadata.Run, int, error) {
	var total int
	if err := db.queryRow(ctx, `SELECT count(*) FROM job_runs WHERE (? = '' OR kind = ?)`, kind, kind).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s runs: %w", kind, err)
	}
	rows, err := db.query(ctx,
		`SELECT id, kind, started_by, replica, started_at, finished_at, outcome, manifests, blobs, links, bytes, error_text, summary
		 FROM job_runs WHERE (? = '' OR kind = ?) ORDER BY id DESC LIMIT ? OFFSET ?`, kind, kind, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s runs: %w", kind, err)
	}
	defer rows.Close()
	out := []metadata.Run{}
	for rows.Next() {
		var r metadata.Run
		var started, finished int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.Trigger, &r.Replica, &started, &finished, &r.Outcome,
			&r.Manifests, &r.Blobs, &r.Links, &r.Bytes, &r.Error, &r.Summary); err != nil {
			return nil, 0, fmt.Errorf("list %s runs: %w", kind, err)
		}
		r.StartedAt = fromNanos(started)
		if finished != 0 {
			r.FinishedAt = fromNanos(finished)
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}
