package sqldb

import (
	"context"
	"fmt"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.PolicyStore = (*DB)(nil)

// SetPolicies records the policies and moves the version, in one
// transaction.
func (db *DB) SetPolicies(ctx context.Context, ps []metadata.Policy) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		ts := tx.db.now()
		for _, p := range ps {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO policies (pattern, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)
				 ON CONFLICT (pattern, key) DO UPDATE SET value = excluded.value, set_by = excluded.set_by, set_at = excluded.set_at`,
				p.Pattern, p.Key, p.Value, p.SetBy, ts); err != nil {
				return fmt.Errorf("set policy %s %s: %w", p.Pattern, p.Key, err)
			}
		}
		return bumpPolicyVersion(ctx, tx)
	})
}

// DeletePolicy removes one policy and moves the version.
func (db *DB) DeletePolicy(ctx context.Context, pattern, key string) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM policies WHERE pattern = ? AND key = ?`, pattern, key)
		if err != nil {
			return fmt.Errorf("remove policy %s %s: %w", pattern, key, err)
		}
		if err := expectOne(res, "policy "+pattern+" "+key); err != nil {
			return err
		}
		return bumpPolicyVersion(ctx, tx)
	})
}

// bumpPolicyVersion moves the counter that caches of the policies check.
// On PostgreSQL its row lock also orders concurrent changes.
func bumpPolicyVersion(ctx context.Context, tx *stmtTx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE policy_version SET version = version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("policy version: %w", err)
	}
	return nil
}

// ListPolicies lists pattern's policies, or all of them for "".
func (db *DB) ListPolicies(ctx context.Context, pattern string) ([]metadata.Policy, error) {
	q := `SELECT pattern, key, value, set_by, set_at FROM policies`
	var args []any
	if pattern != "" {
		q += ` WHERE pattern = ?`
		args = append(args, pattern)
	}
	rows, err := db.query(ctx, q+` ORDER BY pattern, key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	out := []metadata.Policy{}
	for rows.Next() {
		var p metadata.Policy
		var at int64
		if err := rows.Scan(&p.Pattern, &p.Key, &p.Value, &p.SetBy, &at); err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		p.SetAt = fromNanos(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PolicyVersion reads the counter. On SQLite the answer is memoised until
// the next commit (memo.go), so a push pays next to nothing for it; on
// PostgreSQL it is one primary-key read, which is what lets a change on
// one replica apply on every other by its next push.
func (db *DB) PolicyVersion(ctx context.Context) (int64, error) {
	v, err := db.lookup(pointLookup(ctx), `SELECT version FROM policy_version WHERE id = ?`, int64(1))
	if err != nil {
		return 0, fmt.Errorf("policy version: %w", err)
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("policy version stored as %T", v)
	}
	return n, nil
}
