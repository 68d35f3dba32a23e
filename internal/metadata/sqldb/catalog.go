package sqldb

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// lastPushedExpr is a repository's newest tag push; tags_pushed_at makes
// it one index seek per repository.
const lastPushedExpr = `COALESCE((SELECT MAX(t.pushed_at) FROM tags t WHERE t.repo_id = r.id), 0)`

// repoWhere builds the WHERE clause shared by a page and its count.
func (db *DB) repoWhere(q metadata.RepositoryQuery) (string, []any, error) {
	instr := db.fn("instr")
	conds := []string{"1 = 1"}
	var args []any
	if q.Namespace != "" {
		// A range on the unique name index; '0' is the byte after '/'.
		conds = append(conds, `r.name > ? AND r.name < ?`)
		args = append(args, q.Namespace+"/", q.Namespace+"0")
	}
	if q.Search != "" {
		s := strings.ToLower(q.Search)
		conds = append(conds, `(`+instr+`(r.name, ?) > 0 OR `+instr+`(lower(COALESCE(i.description, '')), ?) > 0)`)
		args = append(args, s, s)
	}
	if v := q.Visible; v != nil {
		cond, vargs, err := db.visibleCond(v, "r.name")
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, cond)
		args = append(args, vargs...)
	}
	return strings.Join(conds, " AND "), args, nil
}

// visibleCond is the condition that the repository named by the column
// name is one v may see.
func (db *DB) visibleCond(v *metadata.VisibleTo, name string) (string, []any, error) {
	instr, greatest := db.fn("instr"), db.fn("max")
	ns, err := json.Marshal(append([]string{}, v.Namespaces...))
	if err != nil {
		return "", nil, err
	}
	// repo_visibility is auth's table (migration 2) in this database.
	// The namespace is what precedes the first '/', '' if none.
	return `(COALESCE((SELECT vis.visibility FROM repo_visibility vis WHERE vis.repo = ` + name + `), ?) = 'public'
			OR substr(` + name + `, 1, ` + greatest + `(` + instr + `(` + name + `, '/') - 1, 0)) IN (` + db.jsonStrings() + `))`,
		[]any{v.Default, string(ns)}, nil
}

// ListRepositoryInfo returns a page of repositories. The inner query picks
// the page's ids first, so that tag counts and sizes are computed for the
// page only, never for every repository.
func (db *DB) ListRepositoryInfo(ctx context.Context, q metadata.RepositoryQuery) ([]metadata.RepositoryInfo, int, error) {
	where, args, err := db.repoWhere(q)
	if err != nil {
		return nil, 0, err
	}
	var total int
	err = db.queryRow(ctx, `SELECT COUNT(*) FROM repositories r LEFT JOIN repo_info i ON i.repo_id = r.id WHERE `+where, args...).Scan(&total)
	if err != nil {
		return nil, 0, fmt.Errorf("count repositories: %w", err)
	}
	order := `p.name`
	relevance, rargs := `0`, []any(nil)
	switch {
	case q.Sort == metadata.SortByLastPushed:
		order = `p.last_pushed DESC, p.name`
	case q.Sort == metadata.SortByRelevance && q.Search != "":
		relevance, rargs = db.relevanceExpr(q.Search)
		order = `p.relevance, p.pulls DESC, p.name`
	}
	limit := q.Limit
	if limit <= 0 {
		limit = noLimit
	}
	page := `SELECT r.id, r.name, r.created_at, ` + lastPushedExpr + ` AS last_pushed,
		` + relevance + ` AS relevance, COALESCE(i.pull_count, 0) AS pulls
		FROM repositories r LEFT JOIN repo_info i ON i.repo_id = r.id WHERE ` + where +
		` ORDER BY ` + strings.ReplaceAll(order, "p.", "") + ` LIMIT ? OFFSET ?`
	args = append(rargs, args...)
	rows, err := db.query(ctx, `SELECT p.name, p.created_at, p.last_pushed,
		COALESCE(i.description, ''), '', COALESCE(i.pull_count, 0), COALESCE(i.last_pulled, 0),
		(SELECT COUNT(*) FROM tags t WHERE t.repo_id = p.id),
		CAST(COALESCE((SELECT SUM(b.size) FROM repo_blobs b WHERE b.repo_id = p.id), 0) AS BIGINT)
		FROM (`+page+`) p LEFT JOIN repo_info i ON i.repo_id = p.id ORDER BY `+order,
		append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	out := []metadata.RepositoryInfo{}
	for rows.Next() {
		info, err := scanRepoInfo(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, *info)
	}
	return out, total, rows.Err()
}

// relevanceExpr ranks a repository for a search term, lower first, as
// metadata.SortByRelevance describes: the SQL of the one ranking that the
// web UI's search and docker search share.
func (db *DB) relevanceExpr(search string) (string, []any) {
	instr := db.fn("instr")
	s := strings.ToLower(search)
	return `CASE WHEN r.name = ? OR substr(r.name, ` + db.fn("max") + `(length(r.name) - ?, 1)) = ? THEN 0
		WHEN ` + instr + `(r.name, ?) = 1 OR ` + instr + `(r.name, ?) > 0 THEN 1
		WHEN ` + instr + `(r.name, ?) > 0 THEN 2 ELSE 3 END`,
		[]any{s, len(s), "/" + s, s, "/" + s, s}
}

func scanRepoInfo(row scanner) (*metadata.RepositoryInfo, error) {
	var info metadata.RepositoryInfo
	var created, pushed, pulled int64
	if err := row.Scan(&info.Name, &created, &pushed, &info.Description, &info.Readme,
		&info.PullCount, &pulled, &info.TagCount, &info.StorageSize); err != nil {
		return nil, err
	}
	info.CreatedAt = fromNanos(created)
	if pushed != 0 {
		info.LastPushed = fromNanos(pushed)
	}
	if pulled != 0 {
		info.LastPulled = fromNanos(pulled)
	}
	return &info, nil
}

// GetRepositoryInfo returns one repository's summary with its readme.
func (db *DB) GetRepositoryInfo(ctx context.Context, name string) (*metadata.RepositoryInfo, error) {
	row := db.queryRow(ctx, `SELECT r.name, r.created_at, `+lastPushedExpr+`,
		COALESCE(i.description, ''), COALESCE(i.readme, ''), COALESCE(i.pull_count, 0), COALESCE(i.last_pulled, 0),
		(SELECT COUNT(*) FROM tags t WHERE t.repo_id = r.id),
		CAST(COALESCE((SELECT SUM(b.size) FROM repo_blobs b WHERE b.repo_id = r.id), 0) AS BIGINT)
		FROM repositories r LEFT JOIN repo_info i ON i.repo_id = r.id WHERE r.name = ?`, name)
	info, err := scanRepoInfo(row)
	if err != nil {
		return nil, notFound(err, "repository "+name)
	}
	return info, nil
}

// SetRepositoryDescription replaces a repository's summary and readme.
func (db *DB) SetRepositoryDescription(ctx context.Context, name, description, readme string) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO repo_info (repo_id, description, readme)
			 SELECT id, ?, ? FROM repositories WHERE name = ?
			 ON CONFLICT (repo_id) DO UPDATE SET description = excluded.description, readme = excluded.readme`,
			description, readme, name)
		if err != nil {
			return fmt.Errorf("describe repository %s: %w", name, err)
		}
		return expectOne(res, "repository "+name)
	})
}

// DeleteRepository removes a repository; foreign keys cascade to its
// tags, manifests, references, blob links and info. Its recorded
// visibility goes too, so that a new repository of that name starts from
// the server's default like any other.
func (db *DB) DeleteRepository(ctx context.Context, name string) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		if db.postgres {
			// A link committed after the DELETE below began would go by
			// cascade, uncounted. Locking the repository row waits for
			// the writers whose foreign key checks hold it, and makes
			// later ones wait for this transaction (then fail and retry).
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ? FOR UPDATE`, name).Scan(&id)
			if err != nil {
				return notFound(err, "repository "+name)
			}
		}
		// The links go here rather than by cascade, so that the totals
		// learn which blobs they held.
		if _, err := deleteLinks(ctx, tx,
			`DELETE FROM repo_blobs WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) RETURNING repo_id, digest`, name); err != nil {
			return fmt.Errorf("delete repository %s: %w", name, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM repositories WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete repository %s: %w", name, err)
		}
		if err := expectOne(res, "repository "+name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM repo_visibility WHERE repo = ?`, name); err != nil {
			return fmt.Errorf("delete repository %s: %w", name, err)
		}
		return recordEvent(ctx, tx, metadata.Event{Action: metadata.EventDelete, Repo: name, Actor: metadata.ChangeInfoOf(ctx).Actor})
	})
}

const tagInfoColumns = `t.name, t.digest, t.pushed_at, t.pushed_by, t.last_pulled, m.media_type, m.content`

func scanTagInfo(row scanner) (*metadata.TagInfo, error) {
	var t metadata.TagInfo
	var dgst string
	var pushed, pulled int64
	if err := row.Scan(&t.Name, &dgst, &pushed, &t.PushedBy, &pulled, &t.MediaType, &t.Content); err != nil {
		return nil, err
	}
	t.Digest = digest.Digest(dgst)
	t.PushedAt = fromNanos(pushed)
	if pulled != 0 {
		t.LastPulled = fromNanos(pulled)
	}
	return &t, nil
}

// ListTagInfo returns a page of repo's tags with their manifests.
func (db *DB) ListTagInfo(ctx context.Context, repo string, q metadata.TagQuery) ([]metadata.TagInfo, int, error) {
	var id int64
	if err := db.queryRow(ctx, `SELECT id FROM repositories WHERE name = ?`, repo).Scan(&id); err != nil {
		return nil, 0, notFound(err, "repository "+repo)
	}
	// Without a filter the count is the index's, without reading names.
	filter := db.fn("instr") + `(t.name, ?) > 0`
	if q.Filter == "" {
		filter = `? = ''`
	}
	var total int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM tags t WHERE t.repo_id = ? AND `+filter, id, q.Filter).Scan(&total)
	if err != nil {
		return nil, 0, fmt.Errorf("count tags of %s: %w", repo, err)
	}
	order := `t.name`
	if q.Sort == metadata.SortByLastPushed {
		order = `t.pushed_at DESC, t.name`
	}
	limit := q.Limit
	if limit <= 0 {
		limit = noLimit
	}
	// The page is chosen on the tags index alone; manifests are joined for
	// its rows only, never carried through a sort or skipped by OFFSET.
	rows, err := db.query(ctx, `SELECT `+tagInfoColumns+` FROM (
		SELECT t.repo_id, t.name, t.digest, t.pushed_at, t.pushed_by, t.last_pulled FROM tags t
		WHERE t.repo_id = ? AND `+filter+` ORDER BY `+order+` LIMIT ? OFFSET ?) t
		JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest ORDER BY `+order,
		id, q.Filter, limit, max(q.Offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []metadata.TagInfo{}
	for rows.Next() {
		t, err := scanTagInfo(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list tags of %s: %w", repo, err)
		}
		out = append(out, *t)
	}
	return out, total, rows.Err()
}

// GetTagInfo returns one tag with its manifest.
func (db *DB) GetTagInfo(ctx context.Context, repo, tag string) (*metadata.TagInfo, error) {
	row := db.queryRow(ctx, `SELECT `+tagInfoColumns+` FROM tags t
		JOIN repositories r ON r.id = t.repo_id
		JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
		WHERE r.name = ? AND t.name = ?`, repo, tag)
	t, err := scanTagInfo(row)
	if err != nil {
		return nil, notFound(err, "tag "+tag)
	}
	return t, nil
}

// AddPulls adds a batch of counted pulls.
func (db *DB) AddPulls(ctx context.Context, pulls []metadata.Pull) error {
	if len(pulls) == 0 {
		return nil
	}
	// In one order, so that two replicas flushing at once lock rows in
	// the same order on PostgreSQL.
	pulls = slices.SortedFunc(slices.Values(pulls), func(a, b metadata.Pull) int {
		return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Tag, b.Tag))
	})
	greatest := db.fn("max")
	return db.inTx(ctx, func(tx *stmtTx) error {
		for _, p := range pulls {
			at := p.At.UnixNano()
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO repo_info (repo_id, pull_count, last_pulled)
				 SELECT id, ?, ? FROM repositories WHERE name = ?
				 ON CONFLICT (repo_id) DO UPDATE SET pull_count = repo_info.pull_count + excluded.pull_count,
				   last_pulled = `+greatest+`(repo_info.last_pulled, excluded.last_pulled)`, p.Count, at, p.Repo); err != nil {
				return fmt.Errorf("count pulls of %s: %w", p.Repo, err)
			}
			if _, err := tx.ExecContext(ctx,
				`UPDATE tags SET last_pulled = `+greatest+`(last_pulled, ?)
				 WHERE name = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?)`, at, p.Tag, p.Repo); err != nil {
				return fmt.Errorf("count pulls of %s:%s: %w", p.Repo, p.Tag, err)
			}
			if err := recordEvent(ctx, tx, metadata.Event{Action: metadata.EventPull, Repo: p.Repo, Tag: p.Tag, Count: p.Count}); err != nil {
				return err
			}
		}
		return nil
	})
}
