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

// CreateUpload records a new upload session.
func (db *DB) CreateUpload(ctx context.Context, u *metadata.Upload) error {
	_, err := db.exec(ctx,
		`INSERT INTO uploads (id, repo, algorithm, "offset", hash_state, store_state, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Repo, string(u.Algorithm), u.Offset, u.HashState, u.StoreState, u.StartedAt.UnixNano(), u.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("create upload %s: %w", u.ID, err)
	}
	return nil
}

// GetUpload returns session id of repo.
func (db *DB) GetUpload(ctx context.Context, repo, id string) (*metadata.Upload, error) {
	u := &metadata.Upload{ID: id, Repo: repo}
	var alg string
	var started, updated int64
	err := db.queryRow(pointLookup(ctx),
		`SELECT algorithm, "offset", hash_state, store_state, started_at, updated_at FROM uploads WHERE id = ? AND repo = ?`, id, repo).
		Scan(&alg, &u.Offset, &u.HashState, &u.StoreState, &started, &updated)
	if err != nil {
		return nil, notFound(err, "upload "+id)
	}
	u.Algorithm = digest.Algorithm(alg)
	u.StartedAt, u.UpdatedAt = fromNanos(started), fromNanos(updated)
	return u, nil
}

// AdvanceUpload moves the session from offset from to u.Offset, with the
// hash and store states in the same write.
func (db *DB) AdvanceUpload(ctx context.Context, u *metadata.Upload, from int64) error {
	res, err := db.exec(ctx,
		`UPDATE uploads SET "offset" = ?, hash_state = ?, store_state = ?, updated_at = ? WHERE id = ? AND repo = ? AND "offset" = ?`,
		u.Offset, u.HashState, u.StoreState, u.UpdatedAt.UnixNano(), u.ID, u.Repo, from)
	if err != nil {
		return fmt.Errorf("advance upload %s: %w", u.ID, err)
	}
	if err := expectOne(res, "upload "+u.ID); err != nil {
		if _, gerr := db.GetUpload(ctx, u.Repo, u.ID); gerr == nil {
			return fmt.Errorf("upload %s moved past offset %d: %w", u.ID, from, metadata.ErrConflict)
		}
		return err
	}
	return nil
}

// DeleteUpload removes a session.
func (db *DB) DeleteUpload(ctx context.Context, repo, id string) error {
	res, err := db.exec(ctx, `DELETE FROM uploads WHERE id = ? AND repo = ?`, id, repo)
	if err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return expectOne(res, "upload "+id)
}

// FinishUpload links blob d to repo and removes upload session id in one
// transaction: a finished push costs SQLite's single writer one commit
// instead of two, which is what many small concurrent pushes queue on.
// A session already gone is not an error (the blob is linked all the same).
func (db *DB) FinishUpload(ctx context.Context, repo, id string, d digest.Digest, size int64) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		if err := linkBlob(ctx, tx, repo, d, size); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ? AND repo = ?`, id, repo); err != nil {
			return fmt.Errorf("delete upload %s: %w", id, err)
		}
		return nil
	})
}

// StaleUploads lists up to n sessions last written before before.
func (db *DB) StaleUploads(ctx context.Context, before time.Time, n int) ([]metadata.Upload, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, repo, algorithm, "offset", started_at, updated_at FROM uploads
		 WHERE updated_at < ? ORDER BY updated_at LIMIT ?`, before.UnixNano(), n)
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	defer rows.Close()
	var out []metadata.Upload
	for rows.Next() {
		var u metadata.Upload
		var alg string
		var started, updated int64
		if err := rows.Scan(&u.ID, &u.Repo, &alg, &u.Offset, &started, &updated); err != nil {
			return nil, fmt.Errorf("stale uploads: %w", err)
		}
		u.Algorithm = digest.Algorithm(alg)
		u.StartedAt, u.UpdatedAt = fromNanos(started), fromNanos(updated)
		out = append(out, u)
	}
	return out, rows.Err()
}

// UploadExists reports whether session id exists, in any repository.
func (db *DB) UploadExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := db.queryRow(ctx, `SELECT 1 FROM uploads WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("upload %s exists: %w", id, err)
	}
	return true, nil
}
