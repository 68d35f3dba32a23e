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

var _ metadata.Collector = (*DB)(nil)

// manifestHeld is the one rule of what keeps a manifest m from garbage
// collection however old it is: a tag naming it, a tag that pointed at it
// while the history of that move is kept (its one parameter is the time
// now; the tag can be rolled back to it), an index of its repository
// listing it (an index nothing holds is collected first, which frees its
// children for the next pass), and its subject while that exists (a
// signature, an SBOM stays with its image).
const manifestHeld = `EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)
	OR EXISTS (SELECT 1 FROM tag_history h
		WHERE h.repo_id = m.repo_id AND h.from_digest = m.digest AND h.keep_until > ?)
	OR EXISTS (SELECT 1 FROM manifest_refs mr
		WHERE mr.repo_id = m.repo_id AND mr.kind = 'manifest' AND mr.child = m.digest)
	OR (m.subject <> '' AND EXISTS (SELECT 1 FROM manifests s
		WHERE s.repo_id = m.repo_id AND s.digest = m.subject))`

// untaggedWhere selects manifests m (joined to repositories r) that
// garbage collection may delete; its parameters are the cutoff of the
// untagged age and the time now.
const untaggedWhere = `m.created_at < ? AND NOT (` + manifestHeld + `)`

// UntaggedManifests lists up to n manifests garbage collection may delete.
func (db *DB) UntaggedManifests(ctx context.Context, before time.Time, n int) ([]metadata.ManifestRef, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id
		 WHERE `+untaggedWhere+` ORDER BY r.name, m.digest LIMIT ?`, before.UnixNano(), db.now(), n)
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
//
// On PostgreSQL the DELETE's condition is read from the snapshot its
// statement began with, and a tag committed while it waited for the row
// would be deleted by the cascade. So the manifest row is locked first:
// that waits for a transaction tagging it (its foreign key check holds a
// share lock on the row), and the DELETE, a new statement, then sees its
// tag; a tag that comes later waits for the DELETE, and its push, finding
// the manifest gone, stores it again (inTx's retry).
func (db *DB) DeleteUntaggedManifest(ctx context.Context, ref metadata.ManifestRef, before time.Time) (bool, error) {
	var n int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		n = 0
		if db.postgres {
			var one int
			err := tx.QueryRowContext(ctx,
				`SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repo_id
				 WHERE r.name = ? AND m.digest = ? FOR UPDATE OF m`, ref.Repo, ref.Digest.String()).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx,
			`DELETE FROM manifests WHERE (repo_id, digest) IN (
				SELECT m.repo_id, m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id
				WHERE r.name = ? AND m.digest = ? AND `+untaggedWhere+`)`,
			ref.Repo, ref.Digest.String(), before.UnixNano(), db.now())
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return recordEvent(ctx, tx, metadata.Event{Action: metadata.EventDelete, Repo: ref.Repo, Digest: ref.Digest,
			Actor: metadata.ChangeInfoOf(ctx).Actor})
	})
	if err != nil {
		return false, fmt.Errorf("delete manifest %s@%s: %w", ref.Repo, ref.Digest, err)
	}
	return n > 0, nil
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
	var n int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		var err error
		if db.postgres {
			n, err = pgPruneBlobLinks(ctx, tx, before.UnixNano())
			return err
		}
		n, err = deleteLinks(ctx, tx, `DELETE FROM repo_blobs WHERE `+prunableLinks+` RETURNING repo_id, digest`, before.UnixNano())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune blob links: %w", err)
	}
	return n, nil
}

// jsonValues is jsonStrings with its one column named value.
func (db *DB) jsonValues() string {
	if db.postgres {
		return db.jsonStrings() + ` AS value`
	}
	return db.jsonStrings()
}

// BlobsInUse reports which of ds anything garbage collection keeps
// reaches, in one query.
func (db *DB) BlobsInUse(ctx context.Context, ds []digest.Digest, before time.Time) (map[digest.Digest]bool, error) {
	used := map[digest.Digest]bool{}
	if len(ds) == 0 {
		return used, nil
	}
	list, err := json.Marshal(ds)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT d.value FROM (`+db.jsonValues()+`) d
		 WHERE EXISTS (SELECT 1 FROM manifest_refs WHERE kind = 'blob' AND child = d.value)
		 OR EXISTS (SELECT 1 FROM repo_blobs WHERE digest = d.value AND created_at >= ?)`,
		string(list), sinceNanos(before))
	if err != nil {
		return nil, fmt.Errorf("blobs in use: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("blobs in use: %w", err)
		}
		used[digest.Digest(d)] = true
	}
	return used, rows.Err()
}

// RenewBlobLink renews repo's link to d unless it is recent. The date is
// read by the pull path's point lookup, so that the blob HEADs that ask
// this cost no write while the link is recent; the UPDATE then re-checks
// that the link exists, so that a link pruned since the read is reported
// gone rather than silently left missing.
func (db *DB) RenewBlobLink(ctx context.Context, repo string, d digest.Digest, since time.Time) error {
	v, err := db.lookup(ctx,
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
		db.now(), d.String(), repo)
	if err != nil {
		return fmt.Errorf("renew blob link %s in %s: %w", d, repo, err)
	}
	return expectOne(res, "blob link "+d.String())
}

// pgPruneBlobLinks is PruneBlobLinks on PostgreSQL, in two statements. A
// single DELETE would judge "no manifest references it" on the snapshot it
// began with, and delete a link that a manifest committed while it waited
// for the row now references. So the candidates are locked first,
// skipping those a push holds (checkReferences locks the links it relies
// on; they wait for the next collection), and each is deleted by a new
// statement, which sees every manifest committed before it, only if it
// still qualifies. A push that comes later waits for the lock and finds
// the link gone, as it would after a collection on SQLite.
func pgPruneBlobLinks(ctx context.Context, tx *stmtTx, before int64) (int64, error) {
	rows, err := tx.QueryContext(ctx,
		`SELECT repo_id, digest FROM repo_blobs WHERE `+prunableLinks+` ORDER BY repo_id, digest FOR UPDATE SKIP LOCKED`, before)
	if err != nil {
		return 0, err
	}
	type lockedLink struct {
		repo   int64
		digest string
	}
	var locked []lockedLink
	for rows.Next() {
		var l lockedLink
		if err := rows.Scan(&l.repo, &l.digest); err != nil {
			rows.Close()
			return 0, err
		}
		locked = append(locked, l)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	removed := map[link]int64{}
	var total int64
	for _, l := range locked {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ? AND `+prunableLinks, l.repo, l.digest, before)
		if err != nil {
			return 0, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			removed[link{l.repo, digest.Digest(l.digest)}] += n
			total += n
		}
	}
	return total, uncountRemoved(ctx, tx, removed)
}
