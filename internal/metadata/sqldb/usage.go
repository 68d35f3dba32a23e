package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.UsageStore = (*DB)(nil)

// namespaceOf is a repository's namespace: its first path segment, ""
// for a single-segment name (auth.Namespace; namespaceSQL says the same
// in SQL).
func namespaceOf(repo string) string {
	ns, _, ok := strings.Cut(repo, "/")
	if !ok {
		return ""
	}
	return ns
}

// namespaceSQL is namespaceOf in SQL that SQLite and PostgreSQL both
// speak (neither's function for "position of /" is the other's): ltrim
// strips the leading characters a name segment may hold, leaving "/rest"
// or nothing.
const namespaceSQL = `CASE WHEN ltrim(r.name, 'abcdefghijklmnopqrstuvwxyz0123456789._-') = '' THEN ''
	ELSE substr(r.name, 1, length(r.name) - length(ltrim(r.name, 'abcdefghijklmnopqrstuvwxyz0123456789._-'))) END`

// link is one repo_blobs row as the usage counts see it.
type link struct {
	repo   int64
	digest digest.Digest
}

// countRepoLink adds one new link of d (size bytes) in repository id,
// named repo, to the usage of the repository and of its namespace. Rows
// are written in the order uncountLinkSet takes them.
func countRepoLink(ctx context.Context, tx *stmtTx, id int64, repo string, d digest.Digest, size int64) error {
	ns := namespaceOf(repo)
	var links int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO namespace_blobs (namespace, digest, size, links) VALUES (?, ?, ?, 1)
		 ON CONFLICT (namespace, digest) DO UPDATE SET links = namespace_blobs.links + 1
		 RETURNING links`, ns, d.String(), size).Scan(&links)
	if err != nil {
		return fmt.Errorf("count link of %s in namespace %q: %w", d, ns, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO repo_usage (repo_id, blobs, bytes) VALUES (?, 1, ?)
		 ON CONFLICT (repo_id) DO UPDATE SET blobs = repo_usage.blobs + 1, bytes = repo_usage.bytes + excluded.bytes`,
		id, size); err != nil {
		return fmt.Errorf("count link of %s in %s: %w", d, repo, err)
	}
	if links > 1 {
		return nil
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO namespace_usage (namespace, blobs, bytes) VALUES (?, 1, ?)
		 ON CONFLICT (namespace) DO UPDATE SET blobs = namespace_usage.blobs + 1, bytes = namespace_usage.bytes + excluded.bytes`,
		ns, size); err != nil {
		return fmt.Errorf("count blob %s in namespace %q: %w", d, ns, err)
	}
	return nil
}

// uncountLinkSet takes removed links (with how many rows of each went)
// out of the usage of their repositories and namespaces: namespace_blobs
// rows in (digest, namespace) order, then repo_usage by id, then
// namespace_usage by name, so that on PostgreSQL writers lock in one order.
func uncountLinkSet(ctx context.Context, tx *stmtTx, removed map[link]int64) error {
	if len(removed) == 0 {
		return nil
	}
	names, err := repoNames(ctx, tx, removed)
	if err != nil {
		return err
	}
	type nsBlob struct {
		digest digest.Digest
		ns     string
	}
	perBlob := map[nsBlob]int64{}
	// The links of each (digest, namespace), so that each repository's
	// bytes are summed without scanning every link for every blob: a
	// collection pruning thousands of links spent most of its commit there.
	linksOf := map[nsBlob][]link{}
	type sum struct{ blobs, bytes int64 }
	repos := map[int64]sum{}
	for l, n := range removed {
		b := nsBlob{l.digest, namespaceOf(names[l.repo])}
		perBlob[b] += n
		linksOf[b] = append(linksOf[b], l)
	}
	nsGone := map[string]sum{}
	for _, b := range slices.SortedFunc(maps.Keys(perBlob), func(a, b nsBlob) int {
		if c := strings.Compare(string(a.digest), string(b.digest)); c != 0 {
			return c
		}
		return strings.Compare(a.ns, b.ns)
	}) {
		var links, size int64
		err := tx.QueryRowContext(ctx,
			`UPDATE namespace_blobs SET links = links - ? WHERE namespace = ? AND digest = ? RETURNING links, size`,
			perBlob[b], b.ns, b.digest.String()).Scan(&links, &size)
		if err != nil {
			return fmt.Errorf("uncount links of %s in namespace %q: %w", b.digest, b.ns, err)
		}
		for _, l := range linksOf[b] {
			n := removed[l]
			s := repos[l.repo]
			repos[l.repo] = sum{s.blobs + n, s.bytes + n*size}
		}
		if links > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM namespace_blobs WHERE namespace = ? AND digest = ?`, b.ns, b.digest.String()); err != nil {
			return fmt.Errorf("uncount blob %s in namespace %q: %w", b.digest, b.ns, err)
		}
		s := nsGone[b.ns]
		nsGone[b.ns] = sum{s.blobs + 1, s.bytes + size}
	}
	for _, id := range slices.Sorted(maps.Keys(repos)) {
		if _, err := tx.ExecContext(ctx, `UPDATE repo_usage SET blobs = blobs - ?, bytes = bytes - ? WHERE repo_id = ?`,
			repos[id].blobs, repos[id].bytes, id); err != nil {
			return fmt.Errorf("uncount links in repository %d: %w", id, err)
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(nsGone)) {
		if _, err := tx.ExecContext(ctx, `UPDATE namespace_usage SET blobs = blobs - ?, bytes = bytes - ? WHERE namespace = ?`,
			nsGone[ns].blobs, nsGone[ns].bytes, ns); err != nil {
			return fmt.Errorf("uncount blobs in namespace %q: %w", ns, err)
		}
	}
	return nil
}

// repoNames maps the repository ids of links to their names.
func repoNames(ctx context.Context, tx *stmtTx, links map[link]int64) (map[int64]string, error) {
	names := map[int64]string{}
	for l := range links {
		if _, ok := names[l.repo]; ok {
			continue
		}
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT name FROM repositories WHERE id = ?`, l.repo).Scan(&name); err != nil {
			return nil, fmt.Errorf("repository %d: %w", l.repo, err)
		}
		names[l.repo] = name
	}
	return names, nil
}

// RepositoryUsage returns the blobs repo links and their bytes.
func (db *DB) RepositoryUsage(ctx context.Context, repo string) (metadata.Usage, error) {
	u := metadata.Usage{Name: repo}
	err := db.queryRow(ctx,
		`SELECT u.blobs, u.bytes FROM repo_usage u JOIN repositories r ON r.id = u.repo_id WHERE r.name = ?`,
		repo).Scan(&u.Blobs, &u.Bytes)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("usage of %s: %w", repo, err)
	}
	return u, nil
}

// NamespaceUsage returns the distinct blobs ns's repositories link and
// their bytes.
func (db *DB) NamespaceUsage(ctx context.Context, ns string) (metadata.Usage, error) {
	u := metadata.Usage{Name: ns}
	err := db.queryRow(ctx, `SELECT blobs, bytes FROM namespace_usage WHERE namespace = ?`, ns).Scan(&u.Blobs, &u.Bytes)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("usage of namespace %q: %w", ns, err)
	}
	return u, nil
}

// NamespaceHoldsBlob reports whether a repository of ns links d.
func (db *DB) NamespaceHoldsBlob(ctx context.Context, ns string, d digest.Digest) (bool, error) {
	var one int
	err := db.queryRow(ctx, `SELECT 1 FROM namespace_blobs WHERE namespace = ? AND digest = ?`, ns, d.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob %s in namespace %q: %w", d, ns, err)
	}
	return true, nil
}

// recountRepoUsage, recountNamespaceBlobs and recountNamespaceUsage
// rebuild the usage tables from repo_blobs; the migration that created
// them ran the same statements.
const (
	recountRepoUsage = `INSERT INTO repo_usage (repo_id, blobs, bytes)
		SELECT repo_id, COUNT(*), SUM(size) FROM repo_blobs GROUP BY repo_id`
	recountNamespaceBlobs = `INSERT INTO namespace_blobs (namespace, digest, size, links)
		SELECT ` + namespaceSQL + `, b.digest, MAX(b.size), COUNT(*)
		FROM repo_blobs b JOIN repositories r ON r.id = b.repo_id GROUP BY 1, b.digest`
	recountNamespaceUsage = `INSERT INTO namespace_usage (namespace, blobs, bytes)
		SELECT namespace, COUNT(*), SUM(size) FROM namespace_blobs GROUP BY namespace`
)

// RecountUsage rebuilds the usage tables from the links, in one
// transaction that holds writers of links off (on PostgreSQL a SHARE lock
// on repo_blobs; SQLite has one writer anyway), and counts the
// repositories and namespaces whose usage it corrected.
func (db *DB) RecountUsage(ctx context.Context) (int, error) {
	var fixed int
	err := db.inTx(ctx, func(tx *stmtTx) error {
		if db.postgres {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE repo_blobs IN SHARE MODE`); err != nil {
				return err
			}
		}
		before, err := usageSnapshot(ctx, tx)
		if err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM repo_usage`, `DELETE FROM namespace_blobs`, `DELETE FROM namespace_usage`,
			recountRepoUsage, recountNamespaceBlobs, recountNamespaceUsage} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		after, err := usageSnapshot(ctx, tx)
		if err != nil {
			return err
		}
		fixed = 0
		for k, v := range after {
			if before[k] != v {
				fixed++
			}
		}
		for k, v := range before {
			if _, ok := after[k]; !ok && v != [2]int64{} {
				fixed++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recount usage: %w", err)
	}
	return fixed, nil
}

// usageSnapshot reads every usage row, keyed "r:ID" or "n:NAMESPACE".
func usageSnapshot(ctx context.Context, tx *stmtTx) (map[string][2]int64, error) {
	out := map[string][2]int64{}
	for _, q := range []string{
		`SELECT 'r:' || CAST(repo_id AS TEXT), blobs, bytes FROM repo_usage`,
		`SELECT 'n:' || namespace, blobs, bytes FROM namespace_usage`,
	} {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			var v [2]int64
			if err := rows.Scan(&k, &v[0], &v[1]); err != nil {
				rows.Close()
				return nil, err
			}
			if v != [2]int64{} {
				out[k] = v
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
