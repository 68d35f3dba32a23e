package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// The blobs table records every stored blob, so that garbage collection
// can find unreferenced bytes on a blob store that nothing may list (S3),
// and so that a collection and a push of the same blob, on any replicas,
// meet on one row. The filesystem store settles that race with file times
// and renames (blobstore/fs/collect.go); this is the same guard moved into
// the database, as GitLab's registry keeps review-after times:
//
//   - A push or mount first dates the row (KeepBlob, used_at = now), and
//     only then looks for the bytes (dedup) or stores them, and finally
//     links the blob (linkBlob dates the row again, in the link's
//     transaction).
//   - A collection deletes the bytes inside the transaction that deletes
//     the row, after re-checking there that nothing links or references
//     the blob and that used_at is older than its cutoff.
//
// So either the collection's transaction came first (KeepBlob waited for
// its row lock on PostgreSQL, for the single writer on SQLite) and the
// push finds the bytes gone and stores its own, or the push's date came
// first and the collection keeps the bytes, provided its grace exceeds the
// time from KeepBlob to the link (one blob commit; the grace must already
// exceed a whole push). used_at plus the grace is the review-after time;
// the grace stays an option of each collection rather than a stored date.
// Replica clocks must agree to well within the grace.

// unusedBlob selects blobs rows that garbage collection may delete; its
// parameters are the cutoff and the time from which a link still counts.
const unusedBlob = `used_at < ?
	AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = blobs.digest AND l.created_at >= ?)
	AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.kind = 'blob' AND mr.child = blobs.digest)`

// KeepBlob dates d's row now, creating it if needed.
func (db *DB) KeepBlob(ctx context.Context, d digest.Digest, size int64) error {
	return db.inTx(ctx, func(tx *stmtTx) error { return keepBlob(ctx, tx, d, size) })
}

// keepBlob is KeepBlob in tx. On PostgreSQL the upsert waits for the row
// lock of a collection deleting it, and then inserts a new row.
func keepBlob(ctx context.Context, tx *stmtTx, d digest.Digest, size int64) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO blobs (digest, size, used_at) VALUES (?, ?, ?)
		 ON CONFLICT (digest) DO UPDATE SET size = excluded.size, used_at = excluded.used_at`,
		d.String(), size, tx.db.now())
	if err != nil {
		return fmt.Errorf("keep blob %s: %w", d, err)
	}
	return nil
}

// UnusedBlobs lists one page of blobs garbage collection may delete.
// n <= 0 means no limit.
func (db *DB) UnusedBlobs(ctx context.Context, before, linkSince time.Time, after digest.Digest, n int) ([]metadata.UnusedBlob, error) {
	limit := int64(n)
	if n <= 0 {
		limit = noLimit
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT digest, size FROM blobs WHERE digest > ? AND `+unusedBlob+` ORDER BY digest LIMIT ?`,
		after.String(), before.UnixNano(), sinceNanos(linkSince), limit)
	if err != nil {
		return nil, fmt.Errorf("unused blobs: %w", err)
	}
	out, err := scanUnused(rows)
	if err != nil {
		return nil, fmt.Errorf("unused blobs: %w", err)
	}
	return out, nil
}

// DeleteUnusedBlob deletes d's row and, through remove, its bytes, if it
// is still unused.
//
// On PostgreSQL the row is locked first, skipping it if another
// collection (or a push's KeepBlob) holds it, so that collections on
// several replicas split the work; the DELETE, a new statement, then sees
// every link, reference and date committed before it, and whatever comes
// later waits for this transaction. On SQLite the transaction holds the
// single writer from its DELETE on.
func (db *DB) DeleteUnusedBlob(ctx context.Context, d digest.Digest, before time.Time, remove func(ctx context.Context) error) (bool, error) {
	var deleted bool
	err := db.inTx(ctx, func(tx *stmtTx) error {
		deleted = false
		if db.postgres {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM blobs WHERE digest = ? FOR UPDATE SKIP LOCKED`, d.String()).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE digest = ? AND `+unusedBlob,
			d.String(), before.UnixNano(), int64(math.MinInt64))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		// The bytes go before the row's deletion commits: a push of d
		// that waits for this transaction must find them gone.
		if err := remove(ctx); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("delete unused blob %s: %w", d, err)
	}
	return deleted, nil
}

// sinceNanos is t in the stored unit, with the zero time before every
// stored time.
func sinceNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// DeleteUnusedBlobRecords deletes, in one transaction, the records of ds
// that are still unused, and reports how many went. On PostgreSQL only the
// rows it could lock are deleted, skipping those a push's KeepBlob or
// another collection holds, for the reason DeleteUnusedBlob gives: the
// DELETE, a new statement, then sees every link and date committed before
// it, which a DELETE that waited for a row would not.
func (db *DB) DeleteUnusedBlobRecords(ctx context.Context, ds []digest.Digest, before time.Time) (int64, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	var n int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		n = 0
		list, err := json.Marshal(ds)
		if err != nil {
			return err
		}
		if db.postgres {
			if list, err = lockBlobRecords(ctx, tx, db.jsonStrings(), list); err != nil || list == nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE digest IN (`+db.jsonStrings()+`) AND `+unusedBlob,
			string(list), before.UnixNano(), int64(math.MinInt64))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete %d unused blob records: %w", len(ds), err)
	}
	return n, nil
}

// lockBlobRecords locks the blobs rows of the JSON list of digests that no
// one else holds, and returns them as a JSON list (nil if none).
func lockBlobRecords(ctx context.Context, tx *stmtTx, in string, list []byte) ([]byte, error) {
	rows, err := tx.QueryContext(ctx, `SELECT digest FROM blobs WHERE digest IN (`+in+`) FOR UPDATE SKIP LOCKED`, string(list))
	if err != nil {
		return nil, err
	}
	var locked []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, err
		}
		locked = append(locked, d)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil || len(locked) == 0 {
		return nil, err
	}
	return json.Marshal(locked)
}
