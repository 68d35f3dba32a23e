package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// CreateUpload records a new upload session.
func (db *DB) CreateUpload(ctx context.Context, u *metadata.Upload) error {
	_, err := db.exec(ctx,
		`INSERT INTO uploads (id, repo, algorithm, "offset", hash_state, store_state, content, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Repo, string(u.Algorithm), u.Offset, u.HashState, u.StoreState, u.Content, u.StartedAt.UnixNano(), u.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("create upload %s: %w", u.ID, err)
	}
	return nil
}

// GetUpload returns session id of repo.
func (db *DB) GetUpload(ctx context.Context, repo, id string) (*metadata.Upload, error) {
	u := &metadata.Upload{ID: id, Repo: repo}
	var alg string
	var started, updated, leaseUntil int64
	err := db.queryRow(pointLookup(ctx),
		`SELECT algorithm, "offset", hash_state, store_state, content, started_at, updated_at, writer, lease_until FROM uploads WHERE id = ? AND repo = ?`, id, repo).
		Scan(&alg, &u.Offset, &u.HashState, &u.StoreState, &u.Content, &started, &updated, &u.Writer, &leaseUntil)
	if err != nil {
		return nil, notFound(err, "upload "+id)
	}
	u.Algorithm = digest.Algorithm(alg)
	u.StartedAt, u.UpdatedAt = fromNanos(started), fromNanos(updated)
	if u.Writer != "" {
		u.LeaseUntil = fromNanos(leaseUntil)
	}
	return u, nil
}

// AdvanceUpload moves the session from offset from to u.Offset, with the
// hash and store states in the same write, if u.Writer still holds it;
// the same write ends the lease, so that a chunk costs the claim and this
// one write.
func (db *DB) AdvanceUpload(ctx context.Context, u *metadata.Upload, from int64) error {
	res, err := db.exec(ctx,
		`UPDATE uploads SET "offset" = ?, hash_state = ?, store_state = ?, content = ?, updated_at = ?, writer = '', lease_until = 0
		 WHERE id = ? AND repo = ? AND "offset" = ? AND writer = ?`,
		u.Offset, u.HashState, u.StoreState, u.Content, u.UpdatedAt.UnixNano(), u.ID, u.Repo, from, u.Writer)
	if err != nil {
		return fmt.Errorf("advance upload %s: %w", u.ID, err)
	}
	if err := expectOne(res, "upload "+u.ID); err != nil {
		if _, gerr := db.GetUpload(ctx, u.Repo, u.ID); gerr == nil {
			return fmt.Errorf("upload %s moved past offset %d or has another writer: %w", u.ID, from, metadata.ErrConflict)
		}
		return err
	}
	return nil
}

var _ metadata.UploadLeaser = (*DB)(nil)

// SharedUploads is true on PostgreSQL, which replicas share. A SQLite
// file is one machine's, written by the one `wharf serve` that owns its
// data directory, which serialises each session's writers in memory: a
// claim there would only add a synced commit to every chunk.
func (db *DB) SharedUploads() bool { return db.postgres }

// ClaimUpload makes token the session's writer until until, if the
// session is at offset and no live lease (one lasting past now) is
// another writer's. The offset check makes a writer that read the session
// before another one advanced it lose here, before it writes any bytes.
func (db *DB) ClaimUpload(ctx context.Context, repo, id string, offset int64, token string, now, until time.Time) error {
	if token == "" {
		return fmt.Errorf("claim upload %s: empty writer token", id)
	}
	res, err := db.exec(ctx,
		`UPDATE uploads SET writer = ?, lease_until = ?
		 WHERE id = ? AND repo = ? AND "offset" = ? AND (writer = '' OR lease_until <= ?)`,
		token, until.UnixNano(), id, repo, offset, now.UnixNano())
	if err != nil {
		return fmt.Errorf("claim upload %s: %w", id, err)
	}
	return db.leaseChanged(ctx, res, repo, id, "claimed by another writer or moved past offset "+strconv.FormatInt(offset, 10))
}

// RenewUpload moves token's lease out to until, whether or not it has
// lapsed meanwhile: while token is still the writer, nobody else has
// claimed the session, so nobody else wrote to it.
func (db *DB) RenewUpload(ctx context.Context, repo, id, token string, until time.Time) error {
	if token == "" {
		return fmt.Errorf("renew upload %s: empty writer token", id)
	}
	res, err := db.exec(ctx,
		`UPDATE uploads SET lease_until = ? WHERE id = ? AND repo = ? AND writer = ?`,
		until.UnixNano(), id, repo, token)
	if err != nil {
		return fmt.Errorf("renew upload %s: %w", id, err)
	}
	return db.leaseChanged(ctx, res, repo, id, "no longer held by this writer")
}

// ReleaseUpload ends token's lease if it still holds it.
func (db *DB) ReleaseUpload(ctx context.Context, repo, id, token string) error {
	if token == "" {
		return nil
	}
	if _, err := db.exec(ctx,
		`UPDATE uploads SET writer = '', lease_until = 0 WHERE id = ? AND repo = ? AND writer = ?`,
		id, repo, token); err != nil {
		return fmt.Errorf("release upload %s: %w", id, err)
	}
	return nil
}

// leaseChanged turns a lease update that changed no row into ErrConflict
// when the session exists and ErrNotFound when it does not.
func (db *DB) leaseChanged(ctx context.Context, res sql.Result, repo, id, why string) error {
	err := expectOne(res, "upload "+id)
	if err == nil || !errors.Is(err, metadata.ErrNotFound) {
		return err
	}
	if _, gerr := db.GetUpload(ctx, repo, id); gerr == nil {
		return fmt.Errorf("upload %s %s: %w", id, why, metadata.ErrConflict)
	}
	return err
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
		return deleteUpload(ctx, tx, repo, id)
	})
}

// deleteUpload removes session id's record in tx, if it has one.
func deleteUpload(ctx context.Context, tx *stmtTx, repo, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ? AND repo = ?`, id, repo); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
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

// UploadStoreState returns the store state recorded for session id, in any
// repository.
func (db *DB) UploadStoreState(ctx context.Context, id string) ([]byte, error) {
	var state []byte
	if err := db.queryRow(ctx, `SELECT store_state FROM uploads WHERE id = ?`, id).Scan(&state); err != nil {
		return nil, notFound(err, "upload "+id)
	}
	return state, nil
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
