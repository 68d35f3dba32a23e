package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// PutManifest stores m and points tags at it in one transaction.
func (db *DB) PutManifest(ctx context.Context, m *metadata.Manifest, tags []string) error {
	return db.PutManifestPlanned(ctx, m, tags, nil)
}

func encodeAnnotations(m *metadata.Manifest) (string, error) {
	if len(m.Annotations) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m.Annotations)
	if err != nil {
		return "", fmt.Errorf("encode annotations: %w", err)
	}
	return string(b), nil
}

// putManifest stores m in repository id and points tags at it.
func putManifest(ctx context.Context, tx *stmtTx, id int64, m *metadata.Manifest, annotations string, tags []string) error {
	if err := checkReferences(ctx, tx, m); err != nil {
		return err
	}
	ts := tx.db.now()
	res, err := tx.ExecContext(ctx,
		`INSERT INTO manifests (repo_id, digest, media_type, content, size, artifact_type, subject, annotations, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo_id, digest) DO NOTHING`,
		id, m.Digest.String(), m.MediaType, m.Content, len(m.Content), m.ArtifactType, m.Subject.String(), annotations, ts)
	if err != nil {
		return fmt.Errorf("insert manifest %s: %w", m.Digest, err)
	}
	inserted, _ := res.RowsAffected()
	if inserted == 1 {
		if err := insertRefs(ctx, tx, id, m.Digest, "blob", m.Blobs); err != nil {
			return err
		}
		if err := insertRefs(ctx, tx, id, m.Digest, "manifest", m.Children); err != nil {
			return err
		}
	}
	lineage := m.Lineage
	if lineage != nil {
		if lineage, err = insertLineage(ctx, tx, id, m.Digest, lineage, false, inserted == 1); err != nil {
			return err
		}
	}
	if inserted == 1 && len(m.Children) == 0 {
		storedFresh(tx, id, m, lineage)
	}
	c := changeFor(ctx, tx, metadata.ViaPush, m.PushedBy)
	for _, tag := range tags {
		if err := setTag(ctx, tx, id, tag, m.Digest, m.PushedBy, c); err != nil {
			return err
		}
	}
	push := metadata.Event{Action: metadata.EventPush, Repo: m.Repo, Digest: m.Digest, MediaType: m.MediaType,
		Size: int64(len(m.Content)), Actor: m.PushedBy}
	if len(tags) == 0 {
		return recordEvent(ctx, tx, push)
	}
	for _, tag := range tags {
		push.Tag = tag
		if err := recordEvent(ctx, tx, push); err != nil {
			return err
		}
		// A tag of a golden image moved: the images built on that base
		// may want a rebuild.
		if m.Lineage != nil && m.Lineage.Golden {
			base := push
			base.Action = metadata.EventBaseUpdated
			if err := recordEvent(ctx, tx, base); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkReferences fails with a *metadata.MissingReference when the
// repository lacks what m requires. It runs inside the transaction that
// stores m so that a concurrent delete cannot slip between check and write.
//
// On PostgreSQL the rows found are locked (FOR SHARE) until the commit, as
// SQLite's single writer excludes the delete: an unlink or a manifest
// delete that comes later waits, one that came first hides the row.
func checkReferences(ctx context.Context, tx *stmtTx, m *metadata.Manifest) error {
	blobs, manifests := missingBlobsQuery, missingManifestsQuery
	if tx.db.postgres {
		blobs, manifests = blobs+` FOR SHARE OF b`, manifests+` FOR SHARE OF m`
	}
	lost, err := missing(ctx, tx, blobs, m.Repo, m.RequiredBlobs)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return &metadata.MissingReference{Digest: lost[0]}
	}
	if !m.RequireChildren {
		return nil
	}
	lost, err = missing(ctx, tx, manifests, m.Repo, m.Children)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return &metadata.MissingReference{Digest: lost[0], Manifest: true}
	}
	return nil
}

func insertRefs(ctx context.Context, tx *stmtTx, repoID int64, parent digest.Digest, kind string, children []digest.Digest) error {
	for _, c := range children {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO manifest_refs (repo_id, parent, child, kind) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			repoID, parent.String(), c.String(), kind)
		if err != nil {
			return fmt.Errorf("reference %s -> %s: %w", parent, c, err)
		}
	}
	return nil
}

const manifestColumns = `m.digest, m.media_type, m.content, m.artifact_type, m.subject, m.annotations, m.created_at`

func scanManifest(row *sql.Row, repo string) (*metadata.Manifest, error) {
	m := &metadata.Manifest{Repo: repo}
	var dgst, subject, annotations string
	var created int64
	if err := row.Scan(&dgst, &m.MediaType, &m.Content, &m.ArtifactType, &subject, &annotations, &created); err != nil {
		return nil, err
	}
	m.Digest = digest.Digest(dgst)
	m.Subject = digest.Digest(subject)
	m.CreatedAt = fromNanos(created)
	if annotations != "" {
		if err := json.Unmarshal([]byte(annotations), &m.Annotations); err != nil {
			return nil, fmt.Errorf("decode annotations: %w", err)
		}
	}
	return m, nil
}

// GetManifest returns manifest d of repo. References are not loaded.
func (db *DB) GetManifest(ctx context.Context, repo string, d digest.Digest) (*metadata.Manifest, error) {
	row := db.queryRow(pointLookup(ctx),
		`SELECT `+manifestColumns+` FROM manifests m JOIN repositories r ON r.id = m.repo_id
		 WHERE r.name = ? AND m.digest = ?`, repo, d.String())
	m, err := scanManifest(row, repo)
	if err != nil {
		return nil, notFound(err, "manifest "+d.String())
	}
	return m, nil
}

// GetTaggedManifest returns the manifest tag points at.
func (db *DB) GetTaggedManifest(ctx context.Context, repo, tag string) (*metadata.Manifest, error) {
	row := db.queryRow(pointLookup(ctx),
		`SELECT `+manifestColumns+` FROM tags t
		 JOIN repositories r ON r.id = t.repo_id
		 JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
		 WHERE r.name = ? AND t.name = ?`, repo, tag)
	m, err := scanManifest(row, repo)
	if err != nil {
		return nil, notFound(err, "tag "+tag)
	}
	return m, nil
}

// ResolveTag returns the digest tag points at, without reading the
// manifest: the pull path asks this on every request and serves the bytes
// from a digest-keyed cache. The tags table's foreign key to manifests
// (ON DELETE CASCADE) means a tag found here names a stored manifest.
func (db *DB) ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	v, err := db.lookup(ctx,
		`SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id
		 WHERE r.name = ? AND t.name = ?`, repo, tag)
	if err != nil {
		return "", notFound(err, "tag "+tag)
	}
	d, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("tag %s: digest stored as %T", tag, v)
	}
	return digest.Digest(d), nil
}

// HasManifest reports whether repo holds manifest d, without reading it.
func (db *DB) HasManifest(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	_, err := db.lookup(ctx,
		`SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repo_id
		 WHERE r.name = ? AND m.digest = ?`, repo, d.String())
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("manifest %s: %w", d, err)
	}
	return true, nil
}

// DeleteManifest removes manifest d; tags and references go with it.
func (db *DB) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return db.DeleteManifestPlanned(ctx, repo, d, nil)
}

// DeleteTag removes one tag.
func (db *DB) DeleteTag(ctx context.Context, repo, tag string) error {
	return db.DeleteTagPlanned(ctx, repo, tag, nil)
}

// ListTags lists repo's tags in byte order.
func (db *DB) ListTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	ok, err := db.RepositoryExists(ctx, repo)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("repository %s: %w", repo, metadata.ErrNotFound)
	}
	return db.listNames(ctx,
		`SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id
		 WHERE r.name = ? AND t.name > ? ORDER BY t.name LIMIT ?`, repo, last, n)
}

// Referrers lists the manifests of repo whose subject is d.
func (db *DB) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]metadata.Descriptor, error) {
	q := `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
		FROM manifests m JOIN repositories r ON r.id = m.repo_id
		WHERE r.name = ? AND m.subject = ?`
	args := []any{repo, d.String()}
	if artifactType != "" {
		q += ` AND m.artifact_type = ?`
		args = append(args, artifactType)
	}
	rows, err := db.query(ctx, q+` ORDER BY m.created_at, m.digest`, args...)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", d, err)
	}
	defer rows.Close()
	out := []metadata.Descriptor{}
	for rows.Next() {
		var desc metadata.Descriptor
		var dgst, annotations string
		if err := rows.Scan(&dgst, &desc.MediaType, &desc.Size, &desc.ArtifactType, &annotations); err != nil {
			return nil, fmt.Errorf("referrers of %s: %w", d, err)
		}
		desc.Digest = digest.Digest(dgst)
		if annotations != "" {
			if err := json.Unmarshal([]byte(annotations), &desc.Annotations); err != nil {
				return nil, fmt.Errorf("decode annotations: %w", err)
			}
		}
		out = append(out, desc)
	}
	return out, rows.Err()
}
