package sqldb

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

var _ auth.FailureStore = (*DB)(nil)

func loginKeyHash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// loginKeyArgs returns "?,?,…" for keys and their hashes as arguments,
// with the key each hash stands for.
func loginKeyArgs(keys []string) (string, []any, map[string]string) {
	args := make([]any, len(keys))
	byHash := make(map[string]string, len(keys))
	for i, k := range keys {
		h := loginKeyHash(k)
		args[i] = h
		byHash[string(h)] = k
	}
	return strings.TrimSuffix(strings.Repeat("?,", len(keys)), ","), args, byHash
}

// LoginFailures returns the counters of those of keys that have one.
func (db *DB) LoginFailures(ctx context.Context, keys []string) (map[string]auth.LoginFailure, error) {
	out := map[string]auth.LoginFailure{}
	if len(keys) == 0 {
		return out, nil
	}
	marks, args, byHash := loginKeyArgs(keys)
	rows, err := db.query(ctx, `SELECT key_hash, failures, last_failed FROM login_failures WHERE key_hash IN (`+marks+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read login failures: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		var n, last int64
		if err := rows.Scan(&h, &n, &last); err != nil {
			return nil, fmt.Errorf("read login failures: %w", err)
		}
		out[byHash[string(h)]] = auth.LoginFailure{Count: int(n), Last: fromNanos(last)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read login failures: %w", err)
	}
	return out, nil
}

// AddLoginFailure counts one failure of key in one statement, so that
// replicas counting failures of one key at once lose none.
func (db *DB) AddLoginFailure(ctx context.Context, key string, now, forgetBefore time.Time) (auth.LoginFailure, error) {
	var n, last int64
	// The latest time wins whichever replica's write lands last, so that
	// a replica whose clock lags cannot shorten a block.
	greatest := db.fn("max")
	err := db.inTx(ctx, func(tx *stmtTx) error {
		return tx.QueryRowContext(ctx,
			`INSERT INTO login_failures (key_hash, failures, last_failed) VALUES (?, 1, ?)
			 ON CONFLICT (key_hash) DO UPDATE SET
			   failures = CASE WHEN login_failures.last_failed < ? THEN 1 ELSE login_failures.failures + 1 END,
			   last_failed = `+greatest+`(login_failures.last_failed, excluded.last_failed)
			 RETURNING failures, last_failed`,
			loginKeyHash(key), now.UnixNano(), forgetBefore.UnixNano()).Scan(&n, &last)
	})
	if err != nil {
		return auth.LoginFailure{}, fmt.Errorf("count login failure: %w", err)
	}
	return auth.LoginFailure{Count: int(n), Last: fromNanos(last)}, nil
}

// ClearLoginFailures deletes the counters of keys.
func (db *DB) ClearLoginFailures(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	marks, args, _ := loginKeyArgs(keys)
	if _, err := db.exec(ctx, `DELETE FROM login_failures WHERE key_hash IN (`+marks+`)`, args...); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// PruneLoginFailures deletes the counters last failed before before.
func (db *DB) PruneLoginFailures(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM login_failures WHERE last_failed < ?`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune login failures: %w", err)
	}
	return res.RowsAffected()
}
