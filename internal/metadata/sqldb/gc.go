package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.Collector = (*DB)(nil)

// untaggedWhere selects manifests m (joined to repositories r) that
// garbage collection may delete; its one parameter is the grace cutoff.
// A referrer (a signature, an SBOM) stays while its subject does.
const untaggedWhere = `m.created_at < ?
	AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)
	AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
		WHERE mr.repo_id = m.repo_id AND mr.kind = 'manifest' AND mr.child = m.digest)
	AND (m.subject = '' OR NOT EXISTS (SELECT 1 FROM manifests s
		WHERE s.repo_id = m.repo_id AND s.digest = m.subject))`

// UntaggedManifests lists up to n manifests garbage collection may delete.
func (db *DB) UntaggedManifests(ctx context.Context, before time.Time, n int) ([]metadata.ManifestRef, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id
		 WHERE `+untaggedWhere+` ORDER BY r.name, m.digest LIMIT ?`, before.UnixNano(), n)
	if err != nil {
		return nil, fmt.Errorf("untagged manifests: %w", err)
	}
	defer rows.Close()
	var refs []metadata.ManifestRef
	for rows.Next() {
		var ref metadata.ManifestRef
		var d string
		if err := rows.Scan(&ref.Repo, &d); err != nil {
			return nil, fmt.Errorf("untagged manifests: %w", err)
		}
		ref.Digest = digest.Digest(d)
		refs = append(refs, ref)
	}
	return refs, rows.Err()
}

// DeleteUntaggedManifest deletes the manifest if it still qualifies: the
// condition is checked by the DELETE itself, so a tag pushed since the
// listing saves it. Tags, references and referrer rows go by cascade.
func (db *DB) DeleteUntaggedManifest(ctx context.Context, ref metadata.ManifestRef, before time.Time) (bool, error) {
	res, err := db.write.ExecContext(ctx,
		`DELETE FROM manifests WHERE rowid IN (
			SELECT m.rowid FROM manifests m JOIN repositories r ON r.id = m.repo_id
			WHERE r.name = ? AND m.digest = ? AND `+untaggedWhere+`)`,
		ref.Repo, ref.Digest.String(), before.UnixNano())
	if err != nil {
		return false, fmt.Errorf("delete manifest %s@%s: %w", ref.Repo, ref.Digest, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// prunableLinks selects repo_blobs rows older than the cutoff (its one
// parameter) that no manifest of their repository references.
const prunableLinks = `created_at < ? AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
	WHERE mr.repo_id = repo_blobs.repo_id AND mr.kind = 'blob' AND mr.child = repo_blobs.digest)`

// PruneBlobLinks removes, or counts, the links nothing needs.
func (db *DB) PruneBlobLinks(ctx context.Context, before time.Time, dryRun bool) (int64, error) {
	if dryRun {
		var n int64
		err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM repo_blobs WHERE `+prunableLinks, before.UnixNano()).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count unused blob links: %w", err)
		}
		return n, nil
	}
	res, err := db.write.ExecContext(ctx, `DELETE FROM repo_blobs WHERE `+prunableLinks, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune blob links: %w", err)
	}
	return res.RowsAffected()
}

// BlobInUse reports whether anything garbage collection keeps reaches d.
func (db *DB) BlobInUse(ctx context.Context, d digest.Digest, before time.Time) (bool, error) {
	since := int64(math.MinInt64) // every link counts
	if !before.IsZero() {
		since = before.UnixNano()
	}
	var one int
	err := db.read.QueryRowContext(ctx,
		`SELECT 1 WHERE EXISTS (SELECT 1 FROM manifest_refs WHERE kind = 'blob' AND child = ?)
		 OR EXISTS (SELECT 1 FROM repo_blobs WHERE digest = ? AND created_at >= ?)`,
		d.String(), d.String(), since).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob %s in use: %w", d, err)
	}
	return true, nil
}

// RenewBlobLink renews repo's link to d unless it is recent. The date is
// read by the pull path's point lookup, so that the blob HEADs that ask
// this cost no write while the link is recent; the UPDATE then re-checks
// that the link exists, so that a link pruned since the read is reported
// gone rather than silently left missing.
func (db *DB) RenewBlobLink(ctx context.Context, repo string, d digest.Digest, since time.Time) error {
	v, err := db.point.lookup(ctx,
		`SELECT b.created_at FROM repo_blobs b JOIN repositories r ON r.id = b.repo_id
		 WHERE r.name = ? AND b.digest = ?`, repo, d.String())
	if err != nil {
		return notFound(err, "blob link "+d.String())
	}
	if at, ok := v.(int64); ok && at >= since.UnixNano() {
		return nil
	}
	res, err := db.exec(ctx,
		`UPDATE repo_blobs SET created_at = ? WHERE digest = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?)`,
		now(), d.String(), repo)
	if err != nil {
		return fmt.Errorf("renew blob link %s in %s: %w", d, repo, err)
	}
	return expectOne(res, "blob link "+d.String())
}
