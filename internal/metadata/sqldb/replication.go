package sqldb

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.ReplicationStore = (*DB)(nil)

// CreateReplicationRule stores r.
func (db *DB) CreateReplicationRule(ctx context.Context, r *metadata.ReplicationRule) (int64, error) {
	var id int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		return tx.QueryRowContext(ctx,
			`INSERT INTO replication_rules (namespace, pattern, url, dest_prefix, username, password, created_by, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Namespace, r.Pattern, r.URL, r.DestPrefix, r.Username, r.SealedPassword, r.CreatedBy, tx.db.now()).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("create replication rule: %w", err)
	}
	return id, nil
}

// ruleUpdate runs an update of rule id that must find it.
func (db *DB) ruleUpdate(ctx context.Context, id int64, query string, args ...any) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("replication rule %d: %w", id, err)
		}
		return expectOne(res, fmt.Sprintf("replication rule %d", id))
	})
}

// SetReplicationPassword replaces rule id's sealed password.
func (db *DB) SetReplicationPassword(ctx context.Context, id int64, sealed string) error {
	return db.ruleUpdate(ctx, id, `UPDATE replication_rules SET password = ? WHERE id = ?`, sealed, id)
}

// DeleteReplicationRule removes rule id.
func (db *DB) DeleteReplicationRule(ctx context.Context, id int64) error {
	return db.ruleUpdate(ctx, id, `DELETE FROM replication_rules WHERE id = ?`, id)
}

// RecordReplicationRun records a finished run of rule id.
func (db *DB) RecordReplicationRun(ctx context.Context, id int64, at time.Time, reason string) error {
	if reason == "" {
		return db.ruleUpdate(ctx, id,
			`UPDATE replication_rules SET last_run_at = ?, last_ok_at = ?, last_error = '' WHERE id = ?`,
			at.UnixNano(), at.UnixNano(), id)
	}
	return db.ruleUpdate(ctx, id,
		`UPDATE replication_rules SET last_run_at = ?, last_error = ?, failures = failures + 1 WHERE id = ?`, at.UnixNano(), reason, id)
}

// ruleColumns read a rule with its backlog, so that its status (lag
// included) is one query.
const ruleColumns = `id, namespace, pattern, url, dest_prefix, username, password, created_by, created_at,
	last_run_at, last_ok_at, last_error, failures,
	(SELECT COUNT(*) FROM replication_tasks t WHERE t.rule_id = replication_rules.id),
	(SELECT COALESCE(MIN(t.created_at), 0) FROM replication_tasks t WHERE t.rule_id = replication_rules.id)`

func scanRule(sc interface{ Scan(...any) error }) (metadata.ReplicationRule, error) {
	var r metadata.ReplicationRule
	var created, run, ok, oldest int64
	if err := sc.Scan(&r.ID, &r.Namespace, &r.Pattern, &r.URL, &r.DestPrefix, &r.Username, &r.SealedPassword,
		&r.CreatedBy, &created, &run, &ok, &r.LastError, &r.Failures, &r.Pending, &oldest); err != nil {
		return r, err
	}
	r.CreatedAt = fromNanos(created)
	if oldest != 0 {
		r.Oldest = fromNanos(oldest)
	}
	if run != 0 {
		r.LastRun = fromNanos(run)
	}
	if ok != 0 {
		r.LastOK = fromNanos(ok)
	}
	return r, nil
}

// GetReplicationRule returns rule id.
func (db *DB) GetReplicationRule(ctx context.Context, id int64) (*metadata.ReplicationRule, error) {
	r, err := scanRule(db.queryRow(ctx, `SELECT `+ruleColumns+` FROM replication_rules WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("replication rule %d", id))
	}
	return &r, nil
}

// ListReplicationRules lists namespace's rules, or all of them.
func (db *DB) ListReplicationRules(ctx context.Context, namespace string) ([]metadata.ReplicationRule, error) {
	q, args := `SELECT `+ruleColumns+` FROM replication_rules`, []any{}
	if namespace != "" {
		q += ` WHERE namespace = ?`
		args = append(args, namespace)
	}
	rows, err := db.query(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list replication rules: %w", err)
	}
	defer rows.Close()
	out := []metadata.ReplicationRule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("list replication rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// replicateQuery inserts one event's task for every rule covering its
// repository, in the write's transaction, as recordQuery does for hooks:
// with no rule it inserts nothing. A rule's pattern is a name, or a
// prefix ending in '*', compared in SQL so that a rule created by another
// replica counts from its commit on.
const replicateQuery = `INSERT INTO replication_tasks (rule_id, action, repo, digest, tag, created_at, next_at)
	SELECT r.id, ?, ?, ?, ?, ?, ? FROM replication_rules r
	WHERE r.pattern = ? OR (substr(r.pattern, length(r.pattern), 1) = '*'
	  AND substr(?, 1, length(r.pattern) - 1) = substr(r.pattern, 1, length(r.pattern) - 1))`

// recordReplication records e's replication tasks in tx. Only what
// changes a repository's content replicates: a push or a tag names a tag
// or a manifest; a delete that names neither is the whole repository's.
func recordReplication(ctx context.Context, tx *stmtTx, e metadata.Event, ts int64) error {
	switch {
	case e.Repo == "":
		return nil
	case e.Action == metadata.EventPush || e.Action == metadata.EventTag:
		if e.Tag == "" && e.Digest == "" {
			return nil
		}
	case e.Action != metadata.EventDelete:
		return nil
	}
	if _, err := tx.ExecContext(ctx, replicateQuery, e.Action, e.Repo, e.Digest.String(), e.Tag, ts, ts, e.Repo, e.Repo); err != nil {
		return fmt.Errorf("record replication of %s: %w", e.Repo, err)
	}
	return nil
}

// UpdateReplicationRule replaces what may change of rule r.ID.
func (db *DB) UpdateReplicationRule(ctx context.Context, r *metadata.ReplicationRule) error {
	return db.ruleUpdate(ctx, r.ID,
		`UPDATE replication_rules SET pattern = ?, url = ?, dest_prefix = ?, username = ? WHERE id = ?`,
		r.Pattern, r.URL, r.DestPrefix, r.Username, r.ID)
}

const taskColumns = `id, rule_id, action, repo, digest, tag, created_at, attempts, next_at, last_error`

// ClaimReplicationTasks leases the due tasks, as ClaimDeliveries does:
// SKIP LOCKED on PostgreSQL so that replicas claiming at once take
// different rows, in one statement so that it holds through PgBouncer.
func (db *DB) ClaimReplicationTasks(ctx context.Context, worker string, now, until time.Time, n int) ([]metadata.ReplicationTask, error) {
	var out []metadata.ReplicationTask
	err := db.inTx(ctx, func(tx *stmtTx) error {
		rows, err := tx.QueryContext(ctx, db.claimQuery("replication_tasks", "rule_id", "", taskColumns),
			worker, until.UnixNano(), now.UnixNano(), now.UnixNano(), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t metadata.ReplicationTask
			var dg string
			var created, next int64
			if err := rows.Scan(&t.ID, &t.RuleID, &t.Action, &t.Repo, &dg, &t.Tag, &created, &t.Attempts, &next, &t.LastError); err != nil {
				return err
			}
			t.Digest, t.CreatedAt, t.NextAttempt = digest.Digest(dg), fromNanos(created), fromNanos(next)
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim replication tasks: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b metadata.ReplicationTask) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// FinishReplicationTask removes a task done.
func (db *DB) FinishReplicationTask(ctx context.Context, id int64, worker string) error {
	return db.leased(ctx, id, "finish replication task", `DELETE FROM replication_tasks WHERE id = ? AND claimed_by = ?`, id, worker)
}

// FailReplicationTask records a failed attempt.
func (db *DB) FailReplicationTask(ctx context.Context, id int64, worker, reason string, next time.Time) error {
	return db.leased(ctx, id, "fail replication task",
		`UPDATE replication_tasks SET attempts = attempts + 1, last_error = ?, next_at = ?, claimed_by = '', claimed_until = 0
		 WHERE id = ? AND claimed_by = ?`, reason, next.UnixNano(), id, worker)
}

// RenewReplicationClaims extends worker's leases. A lease that lapsed and
// was taken by another worker names that worker now, so it is not taken
// back; one that lapsed untaken is renewed, as its copy still runs.
func (db *DB) RenewReplicationClaims(ctx context.Context, worker string, until time.Time) (int, error) {
	var n int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx, `UPDATE replication_tasks SET claimed_until = ? WHERE claimed_by = ? AND claimed_by <> ''`, until.UnixNano(), worker)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("renew replication claims: %w", err)
	}
	return int(n), nil
}
