package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.EndedUploads = (*DB)(nil)

// FinishEndedUpload links blob d to repo, removes session id's row if it
// has one and records id as ended, in one transaction: a monolithic push
// of a blob whose session was never recorded costs this one commit.
func (db *DB) FinishEndedUpload(ctx context.Context, repo, id string, started time.Time, d digest.Digest, size int64) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		if err := linkBlob(ctx, tx, repo, d, size); err != nil {
			return err
		}
		return endUpload(ctx, tx, repo, id, started)
	})
}

// EndUpload removes session id's row if it has one and records id as ended.
func (db *DB) EndUpload(ctx context.Context, repo, id string, started time.Time) error {
	return db.inTx(ctx, func(tx *stmtTx) error { return endUpload(ctx, tx, repo, id, started) })
}

func endUpload(ctx context.Context, tx *stmtTx, repo, id string, started time.Time) error {
	if err := deleteUpload(ctx, tx, repo, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO ended_uploads (id, repo, started_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id, repo, started.UnixNano()); err != nil {
		return fmt.Errorf("record upload %s ended: %w", id, err)
	}
	return nil
}

// UploadEnded reports whether id of repo was recorded as ended.
func (db *DB) UploadEnded(ctx context.Context, repo, id string) (bool, error) {
	var one int
	err := db.queryRow(pointLookup(ctx), `SELECT 1 FROM ended_uploads WHERE id = ? AND repo = ?`, id, repo).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("upload %s ended: %w", id, err)
	}
	return true, nil
}

// ForgetEndedUploads drops the ended records of sessions started before
// before.
func (db *DB) ForgetEndedUploads(ctx context.Context, before time.Time) (int, error) {
	res, err := db.exec(ctx, `DELETE FROM ended_uploads WHERE started_at < ?`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("forget ended uploads: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
