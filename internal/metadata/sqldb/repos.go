package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// RepositoryExists reports whether the repository has a row.
func (db *DB) RepositoryExists(ctx context.Context, name string) (bool, error) {
	var id int64
	err := db.queryRow(pointLookup(ctx), `SELECT id FROM repositories WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("repository %s: %w", name, err)
	}
	return true, nil
}

// ListRepositories lists repository names in byte order.
func (db *DB) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	return db.listNames(ctx, `SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?`, last, n)
}

// listNames runs a "names after ?, limit ?" query; n <= 0 means no limit.
// SQLite hands rows over one at a time at a cost of about a microsecond
// each, so the names come back joined in one value (names never contain a
// newline) and are split here: 10,000 tags in 3.3 ms instead of 8.2 ms.
func (db *DB) listNames(ctx context.Context, query string, args ...any) ([]string, error) {
	if n := args[len(args)-1].(int); n <= 0 {
		args[len(args)-1] = noLimit
	}
	if db.postgres {
		// PostgreSQL sends rows in batches: no need to join them.
		return db.listRows(ctx, query, args...)
	}
	var joined sql.NullString
	// The separator is a literal newline, not char(10): SQLite calls char()
	// once per row (about 2.4 ms against 2.0 ms for 10,000 tags here).
	err := db.queryRow(ctx, "SELECT group_concat(name, '\n') FROM ("+query+")", args...).Scan(&joined)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if !joined.Valid || joined.String == "" {
		return []string{}, nil
	}
	names := strings.Split(joined.String, "\n")
	// SQLite aggregates an ordered subquery in order, but does not promise
	// to; checking costs one pass, sorting only if it ever broke.
	if !slices.IsSorted(names) {
		slices.Sort(names)
	}
	return names, nil
}

// ensureRepo returns the id of the repository, creating it if needed.
// Two transactions may both find no row and both insert on a database
// with concurrent writers: the one that loses finds the winner's row.
func ensureRepo(ctx context.Context, tx *stmtTx, name string) (int64, error) {
	var id int64
	for range 2 {
		err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ?`, name).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("repository %s: %w", name, err)
		}
		err = tx.QueryRowContext(ctx,
			`INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING id`,
			name, tx.db.now()).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("create repository %s: %w", name, err)
		}
	}
	return 0, fmt.Errorf("create repository %s: created and deleted concurrently: %w", name, metadata.ErrConflict)
}

// LinkBlob records that repo holds d. Linking again renews the link's
// date: garbage collection spares recent links, which may belong to a
// push whose manifest has not arrived yet.
func (db *DB) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	return db.inTx(ctx, func(tx *stmtTx) error { return linkBlob(ctx, tx, repo, d, size) })
}

func linkBlob(ctx context.Context, tx *stmtTx, repo string, d digest.Digest, size int64) error {
	// The blob's row first (gcblobs.go): it records the blob for garbage
	// collection, and every writer that links d takes its lock before any
	// other, so that none waits for another in a cycle.
	if err := keepBlob(ctx, tx, d, size); err != nil {
		return err
	}
	id, err := ensureRepo(ctx, tx, repo)
	if err != nil {
		return err
	}
	ts := tx.db.now()
	// Twice at most: on PostgreSQL a collection on another replica may
	// prune the link between the INSERT that found it and the UPDATE that
	// renews it (the UPDATE waits for its row lock, then finds the row
	// gone and changes nothing); the link is then inserted again, not
	// reported made while it is missing.
	for range 2 {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO repo_blobs (repo_id, digest, size, created_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (repo_id, digest) DO NOTHING`, id, d.String(), size, ts)
		if err != nil {
			return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
		}
		// Only a new link counts in the totals; an old one is renewed. An
		// upsert would not say which of the two it did.
		if inserted, _ := res.RowsAffected(); inserted == 1 {
			if err := countLink(ctx, tx, d, size); err != nil {
				return err
			}
			return countRepoLink(ctx, tx, id, repo, d, size)
		}
		res, err = tx.ExecContext(ctx,
			`UPDATE repo_blobs SET created_at = ? WHERE repo_id = ? AND digest = ?`, ts, id, d.String())
		if err != nil {
			return fmt.Errorf("renew link of %s in %s: %w", d, repo, err)
		}
		if renewed, _ := res.RowsAffected(); renewed == 1 {
			return nil
		}
	}
	return fmt.Errorf("link blob %s to %s: pruned concurrently twice: %w", d, repo, metadata.ErrConflict)
}

// A link's size is read together with whether the blob's record holds
// its bytes, packed into one signed value (-1-size when it does): the
// pull path's point lookups and their memo carry one column, and a HEAD
// (which needs the size) and a GET (which needs both) then share one
// memoized answer. The subquery is answered from the partial index
// blobs_small.
const (
	linkedBlobQuery = `SELECT CASE WHEN EXISTS (SELECT 1 FROM blobs k WHERE k.digest = b.digest AND k.content IS NOT NULL)
		THEN -1 - b.size ELSE b.size END
		FROM repo_blobs b JOIN repositories r ON r.id = b.repo_id
		WHERE r.name = ? AND b.digest = ?`
	anyLinkedBlobQuery = `SELECT CASE WHEN EXISTS (SELECT 1 FROM blobs k WHERE k.digest = b.digest AND k.content IS NOT NULL)
		THEN -1 - b.size ELSE b.size END
		FROM repo_blobs b WHERE b.digest = ? LIMIT 1`
)

// blobInfo unpacks a value of linkedBlobQuery.
func blobInfo(v any, d digest.Digest) (metadata.BlobInfo, error) {
	n, ok := v.(int64)
	if !ok {
		return metadata.BlobInfo{}, fmt.Errorf("blob %s: size stored as %T", d, v)
	}
	if n < 0 {
		return metadata.BlobInfo{Size: -1 - n, InRecord: true}, nil
	}
	return metadata.BlobInfo{Size: n}, nil
}

// LinkedBlob implements metadata.SmallBlobs.
func (db *DB) LinkedBlob(ctx context.Context, repo string, d digest.Digest) (metadata.BlobInfo, error) {
	// Blob HEADs and GETs ask this on every request: the direct path.
	v, err := db.lookup(ctx, linkedBlobQuery, repo, d.String())
	if err != nil {
		return metadata.BlobInfo{}, notFound(err, "blob "+d.String())
	}
	return blobInfo(v, d)
}

// BlobSize returns the size of d if repo holds it.
func (db *DB) BlobSize(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	b, err := db.LinkedBlob(ctx, repo, d)
	return b.Size, err
}

// AnyLinkedBlob implements metadata.SmallBlobs.
func (db *DB) AnyLinkedBlob(ctx context.Context, d digest.Digest) (metadata.BlobInfo, error) {
	var v int64
	if err := db.queryRow(pointLookup(ctx), anyLinkedBlobQuery, d.String()).Scan(&v); err != nil {
		return metadata.BlobInfo{}, notFound(err, "blob "+d.String())
	}
	return blobInfo(v, d)
}

// AnyBlobSize returns the size of d if any repository holds it.
func (db *DB) AnyBlobSize(ctx context.Context, d digest.Digest) (int64, error) {
	b, err := db.AnyLinkedBlob(ctx, d)
	return b.Size, err
}

// BlobRepositories lists the repositories that hold d, in byte order.
func (db *DB) BlobRepositories(ctx context.Context, d digest.Digest, last string, n int) ([]string, error) {
	return db.listNames(ctx,
		`SELECT r.name AS name FROM repo_blobs b JOIN repositories r ON r.id = b.repo_id
		 WHERE b.digest = ? AND r.name > ? ORDER BY r.name LIMIT ?`, d.String(), last, n)
}

// UnlinkBlob removes repo's link to d.
func (db *DB) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		var id int64
		err := tx.QueryRowContext(ctx,
			`DELETE FROM repo_blobs WHERE digest = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?) RETURNING repo_id`,
			d.String(), repo).Scan(&id)
		if err != nil {
			return notFound(err, "unlink blob "+d.String())
		}
		return uncountLinks(ctx, tx, id, d)
	})
}

// MissingBlobs returns the digests among ds that repo does not hold.
func (db *DB) MissingBlobs(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	return missing(ctx, db.read, missingBlobsQuery, repo, ds)
}

// MissingManifests returns the digests among ds that repo does not hold.
func (db *DB) MissingManifests(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	return missing(ctx, db.read, missingManifestsQuery, repo, ds)
}

const (
	missingBlobsQuery = `SELECT b.digest FROM repo_blobs b JOIN repositories r ON r.id = b.repo_id
		WHERE r.name = ? AND b.digest IN (%s)`
	missingManifestsQuery = `SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id
		WHERE r.name = ? AND m.digest IN (%s)`
)

// querier is what *sql.DB and *sql.Tx share for reads.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// missing runs query (with one %s for the IN list) and returns the digests
// of ds it did not find, in the order of ds.
func missing(ctx context.Context, q querier, query, repo string, ds []digest.Digest) ([]digest.Digest, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(ds)+1)
	args = append(args, repo)
	for _, d := range ds {
		args = append(args, d.String())
	}
	rows, err := q.QueryContext(ctx, fmt.Sprintf(query, strings.TrimSuffix(strings.Repeat("?,", len(ds)), ",")), args...)
	if err != nil {
		return nil, fmt.Errorf("check references: %w", err)
	}
	defer rows.Close()
	found := make(map[string]bool, len(ds))
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("check references: %w", err)
		}
		found[s] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check references: %w", err)
	}
	var out []digest.Digest
	for _, d := range ds {
		if !found[d.String()] {
			out = append(out, d)
		}
	}
	return out, nil
}

// expectOne maps "no row affected" to ErrNotFound.
func expectOne(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, metadata.ErrNotFound)
	}
	return nil
}

// noLimit is "LIMIT none" in both dialects (SQLite's -1 is an error to
// PostgreSQL, PostgreSQL's ALL unknown to SQLite).
const noLimit = math.MaxInt64

// listRows runs a one-column query and returns its strings.
func (db *DB) listRows(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		names = append(names, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return names, nil
}
