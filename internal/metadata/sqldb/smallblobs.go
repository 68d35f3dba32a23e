package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// Small blobs keep their bytes in the content column of their blobs row
// (gcblobs.go), so that the row is both the record garbage collection
// works from and the bytes: whatever deletes the row deletes the bytes in
// the same transaction, and whatever links the blob meets a collection
// on that row, as a push of a stored blob does.

var _ metadata.SmallBlobs = (*DB)(nil)

// PutSmallBlob implements metadata.SmallBlobs.
func (db *DB) PutSmallBlob(ctx context.Context, repo string, d digest.Digest, content []byte, end metadata.UploadEnd) error {
	err := db.inTx(ctx, func(tx *stmtTx) error {
		// linkBlob dates (or makes) the row first, so this transaction
		// holds it before it writes the bytes: a collection deleting it
		// has finished, and this makes a new one.
		if err := linkBlob(ctx, tx, repo, d, int64(len(content))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE blobs SET content = ? WHERE digest = ? AND content IS NULL`, content, d.String()); err != nil {
			return fmt.Errorf("keep bytes of blob %s: %w", d, err)
		}
		switch {
		case end.ID == "":
			return nil
		case !end.Started.IsZero():
			return endUpload(ctx, tx, repo, end.ID, end.Started)
		default:
			return deleteUpload(ctx, tx, repo, end.ID)
		}
	})
	if err != nil {
		return fmt.Errorf("put small blob %s: %w", d, err)
	}
	return nil
}

// SmallBlob implements metadata.SmallBlobs.
func (db *DB) SmallBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	var content []byte
	err := db.queryRow(pointLookup(ctx), `SELECT content FROM blobs WHERE digest = ? AND content IS NOT NULL`, d.String()).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, metadata.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("small blob %s: %w", d, err)
	}
	return content, nil
}

// MountSmallBlob implements metadata.SmallBlobs. The UPDATE takes the
// row (on PostgreSQL waiting for a collection that holds it, and then
// finding it gone) before the link is written.
func (db *DB) MountSmallBlob(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	var mounted bool
	err := db.inTx(ctx, func(tx *stmtTx) error {
		mounted = false
		var size int64
		err := tx.QueryRowContext(ctx,
			`UPDATE blobs SET used_at = ? WHERE digest = ? AND content IS NOT NULL RETURNING size`,
			tx.db.now(), d.String()).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := linkBlob(ctx, tx, repo, d, size); err != nil {
			return err
		}
		mounted = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("mount small blob %s into %s: %w", d, repo, err)
	}
	return mounted, nil
}

// CollectSmallBlobs implements metadata.SmallBlobs: it locks a page of
// unused rows that hold bytes (on PostgreSQL skipping those others hold;
// on SQLite the transaction holds the single writer), then deletes those
// still unused in a new statement, which sees every link and date
// committed before it, as DeleteUnusedBlob does for one.
func (db *DB) CollectSmallBlobs(ctx context.Context, before, linkSince time.Time, after digest.Digest, n int, dryRun bool) ([]metadata.UnusedBlob, error) {
	limit := int64(n)
	if n <= 0 {
		limit = noLimit
	}
	pick := `SELECT digest, size FROM blobs WHERE content IS NOT NULL AND digest > ? AND ` + unusedBlob + ` ORDER BY digest LIMIT ?`
	args := []any{after.String(), before.UnixNano(), sinceNanos(linkSince), limit}
	if dryRun {
		rows, err := db.read.QueryContext(ctx, pick, args...)
		if err != nil {
			return nil, fmt.Errorf("unused small blobs: %w", err)
		}
		return scanUnused(rows)
	}
	if db.postgres {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	var out []metadata.UnusedBlob
	err := db.inTx(ctx, func(tx *stmtTx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, pick, args...)
		if err != nil {
			return err
		}
		picked, err := scanUnused(rows)
		if err != nil || len(picked) == 0 {
			return err
		}
		ds := make([]string, len(picked))
		for i, b := range picked {
			ds[i] = b.Digest.String()
		}
		list, err := json.Marshal(ds)
		if err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx,
			`DELETE FROM blobs WHERE digest IN (`+db.jsonStrings()+`) AND content IS NOT NULL AND `+unusedBlob+` RETURNING digest, size`,
			string(list), before.UnixNano(), sinceNanos(linkSince))
		if err != nil {
			return err
		}
		out, err = scanUnused(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("collect small blobs: %w", err)
	}
	return out, nil
}

// scanUnused reads (digest, size) rows and closes them.
func scanUnused(rows *sql.Rows) ([]metadata.UnusedBlob, error) {
	defer rows.Close()
	var out []metadata.UnusedBlob
	for rows.Next() {
		var b metadata.UnusedBlob
		var d string
		if err := rows.Scan(&d, &b.Size); err != nil {
			return nil, err
		}
		b.Digest = digest.Digest(d)
		out = append(out, b)
	}
	return out, rows.Err()
}
