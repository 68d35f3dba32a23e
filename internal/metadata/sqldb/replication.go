package sqldb

import (
	"context"
	"fmt"
	"time"

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
		`UPDATE replication_rules SET last_run_at = ?, last_error = ? WHERE id = ?`, at.UnixNano(), reason, id)
}

const ruleColumns = `id, namespace, pattern, url, dest_prefix, username, password, created_by, created_at,
	last_run_at, last_ok_at, last_error`

func scanRule(sc interface{ Scan(...any) error }) (metadata.ReplicationRule, error) {
	var r metadata.ReplicationRule
	var created, run, ok int64
	if err := sc.Scan(&r.ID, &r.Namespace, &r.Pattern, &r.URL, &r.DestPrefix, &r.Username, &r.SealedPassword,
		&r.CreatedBy, &created, &run, &ok, &r.LastError); err != nil {
		return r, err
	}
	r.CreatedAt = fromNanos(created)
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
