package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.LineageStore = (*DB)(nil)

const lineageColumns = `l.chain, l.first_chain, l.layers, l.golden, l.base_repo, l.base_digest, l.base_tags, l.base_layers, l.source, l.note`

// insertLineage records l for manifest d of repository repoID;
// replace overwrites what is there, otherwise a recorded lineage stays (a
// manifest pushed again keeps what was found when it was first pushed).
// fresh says the manifest was stored by this transaction. It returns
// what it recorded: l, with the base its FindBase found.
func insertLineage(ctx context.Context, tx *stmtTx, repoID int64, d digest.Digest, l *metadata.Lineage, replace, fresh bool) (*metadata.Lineage, error) {
	if l.Base.Repo == "" && len(l.FindBase) > 0 {
		if !replace {
			return insertFindingBase(ctx, tx, repoID, d, l, fresh)
		}
		// A copy: a batch that fails is retried from the caller's l.
		found := *l
		if err := findBase(ctx, tx, &found); err != nil {
			return nil, err
		}
		l = &found
	}
	conflict := `DO NOTHING`
	if replace {
		conflict = `DO UPDATE SET chain = excluded.chain, first_chain = excluded.first_chain, layers = excluded.layers,
			golden = excluded.golden, base_repo = excluded.base_repo, base_digest = excluded.base_digest,
			base_tags = excluded.base_tags, base_layers = excluded.base_layers, source = excluded.source, note = excluded.note`
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO image_lineage (repo_id, digest, chain, first_chain, layers, golden, base_repo, base_digest, base_tags, base_layers, source, note)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo_id, digest) `+conflict,
		repoID, d.String(), l.Chain, l.First, l.Layers, l.Golden, l.Base.Repo, l.Base.Digest.String(),
		strings.Join(l.Base.Tags, " "), l.Base.Layers, l.Base.Source, l.Note)
	if err != nil {
		return nil, fmt.Errorf("lineage of %s: %w", d, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return l, err
	}
	return l, deriveImage(ctx, tx, repoID, d.String(), replace, fresh)
}

// insertFindingBase is insertLineage for a pushed image whose base the
// store finds (l.FindBase): one statement looks its chains up among the
// golden images, records the longest found (as findBase and BaseAmong
// choose it) and answers whether an index in the repository lists the
// image, where a push would otherwise ask three (a chain lookup, the
// insert, and deriveImage's search for indexes, which for a fresh image
// finds one only when a sparse index came first). Each statement costs a
// push tens of microseconds of the few hundred that lineage adds to it.
func insertFindingBase(ctx context.Context, tx *stmtTx, repoID int64, d digest.Digest, l *metadata.Lineage, fresh bool) (*metadata.Lineage, error) {
	args := []any{repoID, d.String(), l.Chain, l.First, l.Layers, l.Golden, metadata.SourceLayers, l.Note}
	for _, c := range l.FindBase {
		args = append(args, c)
	}
	args = append(args, repoID, d.String(), repoID, d.String())
	found := *l
	var baseDigest, tags string
	var listed bool
	err := tx.QueryRowContext(ctx, `INSERT INTO image_lineage (repo_id, digest, chain, first_chain, layers, golden, base_repo, base_digest, base_tags, base_layers, source, note)
		SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BOOLEAN),
			COALESCE(g.name, ''), COALESCE(g.digest, ''), COALESCE(g.tags, ''), COALESCE(g.layers, 0),
			CASE WHEN g.name IS NULL THEN '' ELSE CAST(? AS TEXT) END, CAST(? AS TEXT)
		FROM (SELECT 1 AS one) AS o LEFT JOIN (
			SELECT r.name, l.digest, l.layers, (SELECT `+tx.db.fn("group_concat")+`(t.name, ' ' ORDER BY t.name) FROM tags t
				WHERE t.repo_id = l.repo_id AND t.digest = l.digest) AS tags
			FROM image_lineage l JOIN repositories r ON r.id = l.repo_id
			WHERE l.golden AND l.chain IN (`+placeholders(len(l.FindBase))+`) AND NOT (l.repo_id = ? AND l.digest = ?)
			ORDER BY l.layers DESC, r.name, l.digest LIMIT 1) AS g ON true
		WHERE true ON CONFLICT (repo_id, digest) DO NOTHING
		RETURNING base_repo, base_digest, base_tags, base_layers, source,
			EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.repo_id = ? AND mr.child = ? AND mr.kind = 'manifest')`, args...).
		Scan(&found.Base.Repo, &baseDigest, &tags, &found.Base.Layers, &found.Base.Source, &listed)
	if errors.Is(err, sql.ErrNoRows) {
		return l, nil // recorded before: it stays
	}
	if err != nil {
		return nil, fmt.Errorf("lineage of %s: %w", d, err)
	}
	found.Base.Digest = digest.Digest(baseDigest)
	if tags != "" {
		found.Base.Tags = strings.Fields(tags)
	}
	if fresh && !listed {
		delete(tx.derived, derivedKey(repoID, d.String()))
		return &found, nil
	}
	return &found, deriveImage(ctx, tx, repoID, d.String(), false, fresh)
}

// derivedCond is the condition of q on derived rows whose base
// repository, base digest and repository name are the columns named.
func (db *DB) derivedCond(q metadata.DerivedQuery, baseRepo, baseDigest, repo string) (string, []any, error) {
	cond := baseRepo + ` = ?`
	args := []any{q.BaseRepo}
	if len(q.BaseDigests) > 0 {
		cond += ` AND ` + baseDigest + ` IN (` + placeholders(len(q.BaseDigests)) + `)`
		for _, d := range q.BaseDigests {
			args = append(args, d.String())
		}
	}
	if q.Visible != nil {
		vis, vargs, err := db.visibleCond(q.Visible, repo)
		if err != nil {
			return "", nil, err
		}
		cond += ` AND ` + vis
		args = append(args, vargs...)
	}
	return cond, args, nil
}

func derivedKey(repoID int64, d string) string { return strconv.FormatInt(repoID, 10) + " " + d }

// derivedBase is the base of an image stored fresh in a transaction
// (stmtTx.derived), and its repository's name.
type derivedBase struct {
	repo, baseRepo, baseDigest string
}

// storedFresh notes that the push of image manifest m (no index) in this
// transaction stored it fresh, with lineage l (as recorded, nil for none):
// its tags, set next, and the floating tags they move, then write their
// derived row (or none) without a query.
func storedFresh(tx *stmtTx, repoID int64, m *metadata.Manifest, l *metadata.Lineage) {
	if tx.derived == nil {
		tx.derived = map[string]derivedBase{}
	}
	b := derivedBase{repo: m.Repo}
	if l != nil && l.Base.Repo != "" {
		b.baseRepo, b.baseDigest = l.Base.Repo, l.Base.Digest.String()
	}
	tx.derived[derivedKey(repoID, m.Digest.String())] = b
}

// The derived rows are the tags built on each base: a tag pointing at an
// image whose lineage names a base carries that base in its own row
// (tags.base_repo, base_digest and repo_name, migration 27), and a tag
// pointing at an index has a row in derived_tags for each base of the
// platforms it lists. Every write of a tag (upsertTag, deriveTag) or of a
// lineage (insertLineage, SetGolden, Bulk) keeps them; a deleted tag or
// lineage takes its rows with it (by cascade), and a deleted platform's
// index tags are derived again from the platforms left (deriveIndexesOf).

// upsertTag points tag at d, with the base of d's lineage: known without
// a query for an image this transaction stored fresh (storedFresh), read
// from its lineage in the same statement otherwise. It returns whether
// the image was one stored fresh.
func upsertTag(ctx context.Context, tx *stmtTx, repoID int64, tag, d string, ts int64, by string) (bool, error) {
	const conflict = ` ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, pushed_at = excluded.pushed_at,
		pushed_by = excluded.pushed_by, base_repo = excluded.base_repo, base_digest = excluded.base_digest, repo_name = excluded.repo_name`
	if b, ok := tx.derived[derivedKey(repoID, d)]; ok {
		repo := ""
		if b.baseRepo != "" {
			repo = b.repo
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tags (repo_id, name, digest, pushed_at, pushed_by, base_repo, base_digest, repo_name)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`+conflict, repoID, tag, d, ts, by, b.baseRepo, b.baseDigest, repo)
		return true, err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO tags (repo_id, name, digest, pushed_at, pushed_by, base_repo, base_digest, repo_name)
		SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT),
			COALESCE(l.base_repo, ''), COALESCE(l.base_digest, ''), CASE WHEN l.base_repo <> '' THEN r.name ELSE '' END
		FROM repositories r LEFT JOIN image_lineage l ON l.repo_id = r.id AND l.digest = ? WHERE r.id = ?`+conflict,
		repoID, tag, d, ts, by, d, repoID)
	return false, err
}

// The derivedByIndex queries select the derived rows of lineages l with
// the tags t pointing at an index that lists l (through its references
// mr). The two forms are one query written for the way each is looked up
// from, since SQLite (which keeps no statistics here) takes the join
// order as written: from an image, its references are a subquery (as a
// join, SQLite would read every tag of the repository); from a tag, a
// join to its index's references (as a subquery, every lineage of the
// repository).
const (
	derivedByIndexOfImage = `SELECT l.base_repo, l.base_digest, r.name, t.name, l.repo_id, l.digest FROM image_lineage l
		JOIN repositories r ON r.id = l.repo_id
		JOIN tags t ON t.repo_id = l.repo_id AND t.digest IN (SELECT mr.parent FROM manifest_refs mr
			WHERE mr.repo_id = l.repo_id AND mr.child = l.digest AND mr.kind = 'manifest')`
	derivedByIndexOfTag = `SELECT l.base_repo, l.base_digest, r.name, t.name, l.repo_id, l.digest FROM tags t
		JOIN repositories r ON r.id = t.repo_id
		JOIN manifest_refs mr ON mr.repo_id = t.repo_id AND mr.parent = t.digest AND mr.kind = 'manifest'
		JOIN image_lineage l ON l.repo_id = mr.repo_id AND l.digest = mr.child`
	// A tag whose index lists two platforms on one base is one row: the
	// first platform written names it.
	insertDerived = `INSERT INTO derived_tags (base_repo, base_digest, repo, tag, repo_id, image) SELECT * FROM (`
	derivedDone   = `) AS d WHERE true ON CONFLICT DO NOTHING`
)

// deriveImage writes the derived rows of image d of repository repoID
// from its lineage, after forgetting those it had if replaced: the base
// of the tags pointing at it, and the rows of those pointing at an index
// listing it (pushed before it, sparse). A fresh manifest has no tags yet
// (its push sets them next, with their base): only indexes can name it.
func deriveImage(ctx context.Context, tx *stmtTx, repoID int64, d string, replaced, fresh bool) error {
	delete(tx.derived, derivedKey(repoID, d))
	if replaced {
		if _, err := tx.ExecContext(ctx, `DELETE FROM derived_tags WHERE repo_id = ? AND image = ?`, repoID, d); err != nil {
			return fmt.Errorf("derived tags of %s: %w", d, err)
		}
	}
	if !fresh {
		if err := setTagBases(ctx, tx, `digest = ?`, repoID, d); err != nil {
			return fmt.Errorf("derived tags of %s: %w", d, err)
		}
	}
	if replaced {
		// An index's tag has one row per base, named after the first of
		// its platforms written: another platform on the base it left
		// names it now.
		return deriveIndexesOf(ctx, tx, repoID, d)
	}
	const cond = ` WHERE l.repo_id = ? AND l.digest = ? AND l.base_repo <> ''`
	if _, err := tx.ExecContext(ctx, insertDerived+derivedByIndexOfImage+cond+derivedDone, repoID, d); err != nil {
		return fmt.Errorf("derived tags of %s: %w", d, err)
	}
	return nil
}

// deriveIndexesOf writes again the derived rows of the tags pointing at
// an index that lists image d, from all their platforms: after d's rows
// went (its lineage replaced, or d deleted), a tag still on the same base
// through another platform keeps a row.
func deriveIndexesOf(ctx context.Context, tx *stmtTx, repoID int64, d string) error {
	const cond = ` WHERE t.repo_id = ? AND t.digest IN (SELECT p.parent FROM manifest_refs p
		WHERE p.repo_id = ? AND p.child = ? AND p.kind = 'manifest') AND l.base_repo <> ''`
	if _, err := tx.ExecContext(ctx, insertDerived+derivedByIndexOfTag+cond+derivedDone, repoID, repoID, d); err != nil {
		return fmt.Errorf("derived tags of the indexes listing %s: %w", d, err)
	}
	return nil
}

// deriveTag writes the derived rows of a tag written by upsertTag, after
// forgetting those it had if it moved: for a tag on an index, a row per
// base of the platforms the index lists (a tag on an image carries its
// base in its own row). fresh says the tag points at an image this
// transaction stored fresh: no index, then.
func deriveTag(ctx context.Context, tx *stmtTx, repoID int64, tag string, moved, fresh bool) error {
	if moved {
		if _, err := tx.ExecContext(ctx, `DELETE FROM derived_tags WHERE repo_id = ? AND tag = ?`, repoID, tag); err != nil {
			return fmt.Errorf("derived rows of tag %s: %w", tag, err)
		}
	}
	if fresh {
		return nil
	}
	const cond = ` WHERE t.repo_id = ? AND t.name = ? AND l.base_repo <> ''`
	if _, err := tx.ExecContext(ctx, insertDerived+derivedByIndexOfTag+cond+derivedDone, repoID, tag); err != nil {
		return fmt.Errorf("derived rows of tag %s: %w", tag, err)
	}
	return nil
}

// deriveLoadedTag is deriveTag for a tag loaded as a record (Bulk),
// whose row holds no base yet, or, loaded over a tag that was there, the
// base of what it pointed at before.
func deriveLoadedTag(ctx context.Context, tx *stmtTx, repoID int64, tag string) error {
	if err := setTagBases(ctx, tx, `name = ?`, repoID, tag); err != nil {
		return fmt.Errorf("derived rows of tag %s: %w", tag, err)
	}
	return deriveTag(ctx, tx, repoID, tag, true, false)
}

// setTagBases sets the base columns of repository repoID's tags that
// match cond (on one more argument) from the lineage of what each points
// at: none for a target without a lineage or a base.
func setTagBases(ctx context.Context, tx *stmtTx, cond string, repoID int64, arg string) error {
	_, err := tx.ExecContext(ctx, `UPDATE tags SET (base_repo, base_digest, repo_name) = (
			SELECT COALESCE(l.base_repo, ''), COALESCE(l.base_digest, ''),
				CASE WHEN COALESCE(l.base_repo, '') <> '' THEN r.name ELSE '' END
			FROM repositories r LEFT JOIN image_lineage l ON l.repo_id = r.id AND l.digest = tags.digest
			WHERE r.id = tags.repo_id)
		WHERE repo_id = ? AND `+cond, repoID, arg)
	return err
}

// PutLineage replaces the lineage of a stored manifest.
func (db *DB) PutLineage(ctx context.Context, l *metadata.Lineage) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		var id int64
		err := tx.QueryRowContext(ctx,
			`SELECT m.repo_id FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? AND m.digest = ?`,
			l.Repo, l.Digest.String()).Scan(&id)
		if err != nil {
			return notFound(err, "manifest "+l.Digest.String())
		}
		_, err = insertLineage(ctx, tx, id, l.Digest, l, true, false)
		return err
	})
}

func scanLineage(row scanner, l *metadata.Lineage) error {
	var baseDigest, tags string
	if err := row.Scan(&l.Chain, &l.First, &l.Layers, &l.Golden, &l.Base.Repo, &baseDigest, &tags,
		&l.Base.Layers, &l.Base.Source, &l.Note); err != nil {
		return err
	}
	l.Base.Digest = digest.Digest(baseDigest)
	if tags != "" {
		l.Base.Tags = strings.Fields(tags)
	}
	return nil
}

// GetLineage returns the lineage of manifest d of repo.
func (db *DB) GetLineage(ctx context.Context, repo string, d digest.Digest) (*metadata.Lineage, error) {
	l := &metadata.Lineage{Repo: repo, Digest: d}
	err := scanLineage(db.queryRow(ctx, `SELECT `+lineageColumns+` FROM image_lineage l
		JOIN repositories r ON r.id = l.repo_id WHERE r.name = ? AND l.digest = ?`, repo, d.String()), l)
	if err != nil {
		return nil, notFound(err, "lineage of "+d.String())
	}
	return l, nil
}

// GoldenByChain looks chains up in the partial index of golden images,
// and each one found up in tags_digest for its tags: a row per tag, in
// one query, since a push asks for both. A list of explicit values,
// rather than one JSON parameter, lets both databases look each value up
// in the index.
func (db *DB) GoldenByChain(ctx context.Context, chains []string) ([]metadata.GoldenImage, error) {
	return goldenByChain(ctx, db.query, chains)
}

func goldenByChain(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), chains []string) ([]metadata.GoldenImage, error) {
	if len(chains) == 0 {
		return nil, nil
	}
	args := make([]any, len(chains))
	for i, c := range chains {
		args[i] = c
	}
	rows, err := query(ctx, `SELECT r.name, l.digest, l.chain, l.layers, COALESCE(t.name, '') FROM image_lineage l
		JOIN repositories r ON r.id = l.repo_id
		LEFT JOIN tags t ON t.repo_id = l.repo_id AND t.digest = l.digest
		WHERE l.golden AND l.chain IN (`+placeholders(len(chains))+`) ORDER BY l.layers DESC, r.name, l.digest, t.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("golden images by chain: %w", err)
	}
	defer rows.Close()
	var out []metadata.GoldenImage
	for rows.Next() {
		var g metadata.GoldenImage
		var d, tag string
		if err := rows.Scan(&g.Repo, &d, &g.Chain, &g.Layers, &tag); err != nil {
			return nil, fmt.Errorf("golden images by chain: %w", err)
		}
		g.Digest = digest.Digest(d)
		if n := len(out); n == 0 || out[n-1].Repo != g.Repo || out[n-1].Digest != g.Digest {
			out = append(out, g)
		}
		if tag != "" {
			last := &out[len(out)-1]
			last.Tags = append(last.Tags, tag)
		}
	}
	return out, rows.Err()
}

// findBase fills in the base of l that l.FindBase asks for: the longest
// golden image found by its chains, other than the image itself.
func findBase(ctx context.Context, tx *stmtTx, l *metadata.Lineage) error {
	found, err := goldenByChain(ctx, tx.QueryContext, l.FindBase)
	if err != nil {
		return err
	}
	if b, ok := metadata.BaseAmong(found, l.Repo, l.Digest); ok {
		l.Base = b
	}
	return nil
}

// SetGolden flags repo's images, in one transaction with forgetting the
// bases found in it by layers when it stops being golden: a scan of every
// lineage, which no index serves, since a push would pay for keeping one
// (migration 25) and a repository stops being golden rarely.
func (db *DB) SetGolden(ctx context.Context, repo string, golden bool) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		// The bases of images stored fresh earlier in this transaction
		// (a batch of writes, groupcommit.go) may be forgotten below:
		// their tags then read them from the lineages.
		tx.derived = nil
		res, err := tx.ExecContext(ctx,
			`UPDATE image_lineage SET golden = ? WHERE golden <> ? AND repo_id = (SELECT id FROM repositories WHERE name = ?)`,
			golden, golden, repo)
		if err != nil {
			return fmt.Errorf("golden %s: %w", repo, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if golden {
			return nil
		}
		_, err = tx.ExecContext(ctx,
			`UPDATE image_lineage SET base_repo = '', base_digest = '', base_tags = '', base_layers = 0, source = ''
			 WHERE base_repo = ? AND base_repo <> '' AND source = 'layers'`, repo)
		if err != nil {
			return fmt.Errorf("forget bases in %s: %w", repo, err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM derived_tags WHERE base_repo = ? AND NOT EXISTS (SELECT 1 FROM image_lineage l
			WHERE l.repo_id = derived_tags.repo_id AND l.digest = derived_tags.image AND l.base_repo = derived_tags.base_repo)`, repo)
		if err != nil {
			return fmt.Errorf("forget derived tags of %s: %w", repo, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE tags SET base_repo = '', base_digest = '', repo_name = ''
			WHERE base_repo = ? AND base_repo <> '' AND NOT EXISTS (SELECT 1 FROM image_lineage l
				WHERE l.repo_id = tags.repo_id AND l.digest = tags.digest AND l.base_repo = tags.base_repo)`, repo)
		if err != nil {
			return fmt.Errorf("forget derived tags of %s: %w", repo, err)
		}
		return nil
	})
	return n, err
}

// GoldenRepositories lists the repositories with golden images, by name.
func (db *DB) GoldenRepositories(ctx context.Context) ([]string, error) {
	return db.listRows(ctx, `SELECT DISTINCT r.name FROM image_lineage l JOIN repositories r ON r.id = l.repo_id
		WHERE l.golden ORDER BY r.name LIMIT ?`, noLimit)
}

// ManifestsWithoutLineage lists repo's manifests that have no lineage.
func (db *DB) ManifestsWithoutLineage(ctx context.Context, repo string, after digest.Digest, n int) ([]metadata.Manifest, error) {
	if n <= 0 {
		n = noLimit
	}
	rows, err := db.query(ctx, `SELECT m.digest, m.media_type, m.content FROM manifests m
		JOIN repositories r ON r.id = m.repo_id
		WHERE r.name = ? AND m.digest > ?
		AND NOT EXISTS (SELECT 1 FROM image_lineage l WHERE l.repo_id = m.repo_id AND l.digest = m.digest)
		ORDER BY m.digest LIMIT ?`, repo, after.String(), n)
	if err != nil {
		return nil, fmt.Errorf("manifests without lineage in %s: %w", repo, err)
	}
	defer rows.Close()
	var out []metadata.Manifest
	for rows.Next() {
		m := metadata.Manifest{Repo: repo}
		var d string
		if err := rows.Scan(&d, &m.MediaType, &m.Content); err != nil {
			return nil, fmt.Errorf("manifests without lineage in %s: %w", repo, err)
		}
		m.Digest = digest.Digest(d)
		out = append(out, m)
	}
	return out, rows.Err()
}

// FirstChains lists the first-layer chains of repo's images.
func (db *DB) FirstChains(ctx context.Context, repo string) ([]string, error) {
	return db.listRows(ctx, `SELECT DISTINCT l.first_chain FROM image_lineage l JOIN repositories r ON r.id = l.repo_id
		WHERE r.name = ? AND l.first_chain <> '' ORDER BY l.first_chain LIMIT ?`, repo, noLimit)
}

// BaselessImages lists base-less images by their first layer's chain.
func (db *DB) BaselessImages(ctx context.Context, firsts []string, after metadata.ManifestRef, n int) ([]metadata.ManifestRef, error) {
	if len(firsts) == 0 {
		return nil, nil
	}
	if n <= 0 {
		n = noLimit
	}
	args := make([]any, 0, len(firsts)+4)
	for _, f := range firsts {
		args = append(args, f)
	}
	args = append(args, after.Repo, after.Repo, after.Digest.String(), n)
	rows, err := db.query(ctx, `SELECT r.name, l.digest FROM image_lineage l JOIN repositories r ON r.id = l.repo_id
		WHERE l.base_repo = '' AND l.first_chain IN (`+placeholders(len(firsts))+`)
		AND (r.name > ? OR (r.name = ? AND l.digest > ?))
		ORDER BY r.name, l.digest LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("base-less images: %w", err)
	}
	defer rows.Close()
	var out []metadata.ManifestRef
	for rows.Next() {
		var ref metadata.ManifestRef
		var d string
		if err := rows.Scan(&ref.Repo, &d); err != nil {
			return nil, fmt.Errorf("base-less images: %w", err)
		}
		ref.Digest = digest.Digest(d)
		out = append(out, ref)
	}
	return out, rows.Err()
}

// DerivedImages pages through the tags built on q.BaseRepo, from its two
// kinds of derived rows: the range of tags_base (tags on images) and of
// derived_tags' primary key (tags on indexes) that the base owns, each in
// the page's order (repository, tag), filtered by the base digests asked
// for, merged, then each row's tag and lineage read by their keys; the
// count is one over the same ranges. A filter reads the base's whole
// range: as many rows as images are built on the base repository, which
// one index serving both forms keeps off a push.
func (db *DB) DerivedImages(ctx context.Context, q metadata.DerivedQuery) ([]metadata.DerivedImage, int, error) {
	onImages, imageArgs, err := db.derivedCond(q, "t.base_repo", "t.base_digest", "t.repo_name")
	if err != nil {
		return nil, 0, err
	}
	// A partial index serves only a query that says its condition.
	onImages += ` AND t.base_repo <> ''`
	onIndexes, indexArgs, err := db.derivedCond(q, "d.base_repo", "d.base_digest", "d.repo")
	if err != nil {
		return nil, 0, err
	}
	args := append(imageArgs, indexArgs...)
	var total int
	if err := db.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM tags t WHERE `+onImages+`)
		+ (SELECT COUNT(*) FROM derived_tags d WHERE `+onIndexes+`)`, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count images built on %s: %w", q.BaseRepo, err)
	}
	out := []metadata.DerivedImage{}
	if total <= q.Offset {
		return out, total, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = noLimit
	}
	rows, err := db.query(ctx, `SELECT x.repo, x.tag, t.digest, t.pushed_at, x.base_digest, l.base_tags, l.base_layers, l.source
		FROM (SELECT t.repo_name AS repo, t.name AS tag, t.base_digest AS base_digest, t.repo_id AS repo_id, t.digest AS image
				FROM tags t WHERE `+onImages+`
			UNION ALL
			SELECT d.repo, d.tag, d.base_digest, d.repo_id, d.image FROM derived_tags d WHERE `+onIndexes+`
			ORDER BY 1, 2, 3 LIMIT ? OFFSET ?) x
		JOIN tags t ON t.repo_id = x.repo_id AND t.name = x.tag
		JOIN image_lineage l ON l.repo_id = x.repo_id AND l.digest = x.image
		ORDER BY x.repo, x.tag, x.base_digest`, append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("images built on %s: %w", q.BaseRepo, err)
	}
	defer rows.Close()
	for rows.Next() {
		x := metadata.DerivedImage{Base: metadata.BaseRef{Repo: q.BaseRepo}}
		var d, bd, tags string
		var pushed int64
		if err := rows.Scan(&x.Repo, &x.Tag, &d, &pushed, &bd, &tags, &x.Base.Layers, &x.Base.Source); err != nil {
			return nil, 0, fmt.Errorf("images built on %s: %w", q.BaseRepo, err)
		}
		x.Digest, x.PushedAt = digest.Digest(d), fromNanos(pushed)
		x.Base.Digest, x.Base.Tags = digest.Digest(bd), strings.Fields(tags)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("images built on %s: %w", q.BaseRepo, err)
	}
	return out, total, nil
}

// TagsAt lists the tags pointing at d, on the tags_digest index: a push
// that found its base asks it, so it reads those rows only.
func (db *DB) TagsAt(ctx context.Context, repo string, d digest.Digest) ([]string, error) {
	return db.listRows(ctx, `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id
		WHERE r.name = ? AND t.digest = ? ORDER BY t.name LIMIT ?`, repo, d.String(), noLimit)
}

// TagTargets lists repo's tags without their manifests.
func (db *DB) TagTargets(ctx context.Context, repo string) ([]metadata.Tag, error) {
	var id int64
	if err := db.queryRow(ctx, `SELECT id FROM repositories WHERE name = ?`, repo).Scan(&id); err != nil {
		return nil, notFound(err, "repository "+repo)
	}
	rows, err := db.query(ctx, `SELECT name, digest, pushed_at FROM tags WHERE repo_id = ? ORDER BY name`, id)
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []metadata.Tag{}
	for rows.Next() {
		var t metadata.Tag
		var d string
		var at int64
		if err := rows.Scan(&t.Name, &d, &at); err != nil {
			return nil, fmt.Errorf("tags of %s: %w", repo, err)
		}
		t.Digest, t.PushedAt = digest.Digest(d), fromNanos(at)
		out = append(out, t)
	}
	return out, rows.Err()
}
