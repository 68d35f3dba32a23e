package sqldb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.Bulk = (*DB)(nil)

// colType is how a column's values travel in a metadata.Record.
type colType int

const (
	colText  colType = iota // string
	colInt                  // int64 (times: Unix nanoseconds)
	colBytes                // []byte
	colBool                 // bool
)

type column struct {
	name string
	typ  colType
	// loose: not compared. A link's date is when it was last made or
	// renewed (a read renews it), a lease for garbage collection rather
	// than data: a destination that served reads since has other dates.
	loose bool
}

// bulkTable describes how one kind of record is stored. The tables that
// a write keeps up to date (linked_blobs, blob_totals) and the ones that
// are not durable records (uploads, schema_migrations) have none.
type bulkTable struct {
	name string
	// repo: each row belongs to a repository through repo_id, which a
	// record carries as the repository's name, its first key: ids are
	// numbered by each database on its own.
	repo   bool
	key    []column
	values []column
	// clash, if set, counts rows elsewhere that forbid adding the record
	// (its one key as the parameter): users and organisations share one
	// namespace.
	clash string
	// added runs in the transaction that inserted a record.
	added func(ctx context.Context, tx *stmtTx, r metadata.Record) error
	// changed runs in the transaction that inserted or replaced a record.
	changed func(ctx context.Context, tx *stmtTx, r metadata.Record) error
}

func text(names ...string) []column {
	out := make([]column, len(names))
	for i, n := range names {
		out[i] = column{name: n, typ: colText}
	}
	return out
}

func col(name string, t colType) column { return column{name: name, typ: t} }

// bulkTables maps each kind to its table.
var bulkTables = map[metadata.Kind]*bulkTable{
	metadata.KindUsers: {name: "users", key: text("name"),
		values: []column{col("password_hash", colText), col("is_admin", colBool), col("created_at", colInt)},
		clash:  `SELECT COUNT(*) FROM orgs WHERE name = ?`},
	metadata.KindOrgs: {name: "orgs", key: text("name"), values: []column{col("created_at", colInt)},
		clash: `SELECT COUNT(*) FROM users WHERE name = ?`},
	metadata.KindMembers: {name: "org_members", key: text("org", "user_name"), values: text("role")},
	metadata.KindTokens: {name: "access_tokens", key: text("id"), values: []column{
		col("user_name", colText), col("kind", colText), col("name", colText), col("scope", colText),
		col("hash", colBytes), col("parent", colText), col("created_at", colInt), col("expires_at", colInt),
		col("last_used", colInt), col("revoked_at", colInt)}},
	metadata.KindSigningKeys: {name: "signing_keys", key: text("id"),
		values: []column{col("private_key", colBytes), col("created_at", colInt), col("retired_at", colInt)}},
	metadata.KindVisibility:   {name: "repo_visibility", key: text("repo"), values: text("visibility")},
	metadata.KindRepositories: {name: "repositories", key: text("name"), values: []column{col("created_at", colInt)}},
	metadata.KindRepositoryInfo: {name: "repo_info", repo: true, values: []column{
		col("description", colText), col("readme", colText), col("pull_count", colInt), col("last_pulled", colInt)}},
	metadata.KindBlobLinks: {name: "repo_blobs", repo: true, key: text("digest"),
		values: []column{col("size", colInt), {name: "created_at", typ: colInt, loose: true}},
		added: func(ctx context.Context, tx *stmtTx, r metadata.Record) error {
			d, size := digest.Digest(r.Key[1]), r.Values[0].(int64)
			// A copied blob must be known to garbage collection at the
			// destination as a pushed one is (gcblobs.go).
			if err := keepBlob(ctx, tx, d, size); err != nil {
				return err
			}
			if err := countLink(ctx, tx, d, size); err != nil {
				return err
			}
			id, err := repoIDOf(ctx, tx, r.Key[0])
			if err != nil {
				return err
			}
			return countRepoLink(ctx, tx, id, r.Key[0], d, size)
		}},
	metadata.KindManifests: {name: "manifests", repo: true, key: text("digest"), values: []column{
		col("media_type", colText), col("content", colBytes), col("size", colInt), col("artifact_type", colText),
		col("subject", colText), col("annotations", colText), col("created_at", colInt)}},
	// In the order of its primary key, which the dump's ORDER BY follows.
	metadata.KindManifestRefs: {name: "manifest_refs", repo: true, key: text("parent", "kind", "child")},
	metadata.KindTags: {name: "tags", repo: true, key: text("name"), values: []column{
		col("digest", colText), col("pushed_at", colInt), col("pushed_by", colText), col("last_pulled", colInt)},
		// The derived rows are kept by the writes of tags and lineages,
		// whichever of the two is loaded second.
		changed: func(ctx context.Context, tx *stmtTx, r metadata.Record) error {
			id, err := repoIDOf(ctx, tx, r.Key[0])
			if err != nil {
				return err
			}
			return deriveLoadedTag(ctx, tx, id, r.Key[1])
		}},
	metadata.KindPolicies: {name: "policies", key: text("pattern", "key"),
		values: []column{col("value", colText), col("set_by", colText), col("set_at", colInt)},
		// Processes that cached the destination's policies must see them.
		changed: func(ctx context.Context, tx *stmtTx, _ metadata.Record) error { return bumpPolicyVersion(ctx, tx) }},
	metadata.KindLineage: {name: "image_lineage", repo: true, key: text("digest"), values: []column{
		col("chain", colText), col("first_chain", colText), col("layers", colInt), col("golden", colBool),
		col("base_repo", colText), col("base_digest", colText), col("base_tags", colText), col("base_layers", colInt),
		col("source", colText), col("note", colText)},
		changed: func(ctx context.Context, tx *stmtTx, r metadata.Record) error {
			id, err := repoIDOf(ctx, tx, r.Key[0])
			if err != nil {
				return err
			}
			return deriveImage(ctx, tx, id, r.Key[1], true, false)
		}},
}

// notCopied are the tables Bulk leaves out, and why. Every table is in
// bulkTables or here (TestBulk_CoversEveryTable): a new table must decide
// whether `wharf migrate` carries it.
var notCopied = map[string]string{
	"uploads":            "an upload's bytes are in the source's upload area",
	"ended_uploads":      "ends of upload sessions, which stay with the source as its uploads do",
	"linked_blobs":       "kept by the writes of blob links (countLink)",
	"blob_totals":        "kept by the writes of blob links (countLink)",
	"blobs":              "kept by the writes of blob links (keepBlob)",
	"login_failures":     "back-off counters are forgotten within the hour anyway",
	"policy_version":     "moved by every write of a policy (bumpPolicyVersion)",
	"schema_migrations":  "each database migrates itself",
	"webhooks":           "not carried yet: create the hooks again at the destination (their secrets with them)",
	"webhook_deliveries": "the source's outbox: let it drain before switching, as the source's uploads finish there",
	"job_leases":         "the source's replicas' leases and schedule; the copy's replicas start their own",
	"job_runs":           "reports of runs over the source's data",
	"tag_history":        "a record of moves for a rollback window; the copy's tags start a new one",
	"repo_usage":         "kept by the writes of blob links (countRepoLink)",
	"namespace_blobs":    "kept by the writes of blob links (countRepoLink)",
	"namespace_usage":    "kept by the writes of blob links (countRepoLink)",
	"replication_rules":  "not carried yet: create the rules again at the destination (their passwords are sealed under the source's secret key)",
	"replication_tasks":  "the source's replication backlog: let it drain before switching, or reconcile from the copy",
	"derived_tags":       "kept by the writes of tags and lineages (deriveTag, deriveImage)",
}

// repoIDOf is the id of repository name, which a record's load found.
func repoIDOf(ctx context.Context, tx *stmtTx, name string) (int64, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ?`, name).Scan(&id); err != nil {
		return 0, fmt.Errorf("repository %s: %w", name, err)
	}
	return id, nil
}

func bulkTableOf(kind metadata.Kind) (*bulkTable, error) {
	t, ok := bulkTables[kind]
	if !ok {
		return nil, fmt.Errorf("no records of kind %q", kind)
	}
	return t, nil
}

// keyExprs are the key columns as the dump selects and orders them.
func (t *bulkTable) keyExprs() []string {
	var out []string
	if t.repo {
		out = append(out, "r.name")
	}
	for _, c := range t.key {
		out = append(out, "t."+c.name)
	}
	return out
}

func (t *bulkTable) keyLen() int {
	if t.repo {
		return len(t.key) + 1
	}
	return len(t.key)
}

// dumpQueries are the queries that page through the table in key order.
// From the start, one query. After a key, a repository's records take
// two: the rest of after's repository, then the repositories after it. One
// row-value comparison over the repository's name and the record's key
// would do, but neither database uses an index for a comparison that
// spans a join, and a page would cost a scan.
func (t *bulkTable) dumpQueries(after []string) (queries []string, args [][]any) {
	keys := t.keyExprs()
	sel := append([]string(nil), keys...)
	for _, c := range t.values {
		sel = append(sel, "t."+c.name)
	}
	from := "SELECT " + strings.Join(sel, ", ") + " FROM " + t.name + " t"
	if t.repo {
		from += " JOIN repositories r ON r.id = t.repo_id"
	}
	order := " ORDER BY " + strings.Join(keys, ", ") + " LIMIT ?"
	switch {
	case after == nil:
		return []string{from + order}, [][]any{nil}
	case !t.repo:
		return []string{from + " WHERE (" + strings.Join(keys, ", ") + ") > (" + placeholders(len(keys)) + ")" + order},
			[][]any{strArgs(after)}
	}
	if len(t.key) > 0 {
		own := keys[1:]
		queries = append(queries, from+" WHERE r.name = ? AND ("+strings.Join(own, ", ")+") > ("+placeholders(len(own))+")"+
			" ORDER BY "+strings.Join(own, ", ")+" LIMIT ?")
		args = append(args, strArgs(after))
	}
	queries = append(queries, from+" WHERE r.name > ?"+order)
	args = append(args, []any{after[0]})
	return queries, args
}

func strArgs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// scanDests returns pointers for the columns' values and a function that
// reads them back as the values a record carries.
func scanDests(cols []column) ([]any, func() []any) {
	dests := make([]any, len(cols))
	for i, c := range cols {
		switch c.typ {
		case colText:
			dests[i] = new(string)
		case colInt:
			dests[i] = new(int64)
		case colBytes:
			dests[i] = new([]byte)
		case colBool:
			dests[i] = new(bool)
		}
	}
	return dests, func() []any {
		out := make([]any, len(dests))
		for i, d := range dests {
			switch p := d.(type) {
			case *string:
				out[i] = *p
			case *int64:
				out[i] = *p
			case *[]byte:
				out[i] = bytes.Clone(*p)
			case *bool:
				out[i] = *p
			}
		}
		return out
	}
}

// Dump returns up to n records of kind after the key after, in key order.
func (db *DB) Dump(ctx context.Context, kind metadata.Kind, after []string, n int) ([]metadata.Record, error) {
	t, err := bulkTableOf(kind)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("dump %s: n must be positive, not %d", kind, n)
	}
	if after != nil && len(after) != t.keyLen() {
		return nil, fmt.Errorf("dump %s: key of %d fields, not %d", kind, t.keyLen(), len(after))
	}
	queries, args := t.dumpQueries(after)
	out := []metadata.Record{}
	for i, q := range queries {
		recs, err := db.dumpRows(ctx, t, q, append(args[i], n-len(out))...)
		if err != nil {
			return nil, fmt.Errorf("dump %s: %w", kind, err)
		}
		out = append(out, recs...)
		if len(out) == n {
			break
		}
	}
	return out, nil
}

// dumpRows runs one dump query.
func (db *DB) dumpRows(ctx context.Context, t *bulkTable, query string, args ...any) ([]metadata.Record, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return t.scanRecords(rows)
}

// scanRecords reads rows of the table's keys (keyExprs) then values.
func (t *bulkTable) scanRecords(rows *sql.Rows) ([]metadata.Record, error) {
	defer rows.Close()
	keys := make([]string, t.keyLen())
	valueDests, values := scanDests(t.values)
	dests := make([]any, 0, len(keys)+len(valueDests))
	for i := range keys {
		dests = append(dests, &keys[i])
	}
	dests = append(dests, valueDests...)
	var out []metadata.Record
	for rows.Next() {
		if err := rows.Scan(dests...); err != nil {
			return nil, err
		}
		out = append(out, metadata.Record{Key: append([]string(nil), keys...), Values: values()})
	}
	return out, rows.Err()
}

// LinkedBlobs lists the blobs linked anywhere, in digest order.
func (db *DB) LinkedBlobs(ctx context.Context, after digest.Digest, n int) ([]metadata.BlobRef, error) {
	if n <= 0 {
		return nil, fmt.Errorf("linked blobs: n must be positive, not %d", n)
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT digest, size FROM linked_blobs WHERE digest > ? ORDER BY digest LIMIT ?`, after.String(), n)
	if err != nil {
		return nil, fmt.Errorf("linked blobs: %w", err)
	}
	defer rows.Close()
	out := []metadata.BlobRef{}
	for rows.Next() {
		var d string
		var b metadata.BlobRef
		if err := rows.Scan(&d, &b.Size); err != nil {
			return nil, fmt.Errorf("linked blobs: %w", err)
		}
		b.Digest = digest.Digest(d)
		out = append(out, b)
	}
	return out, rows.Err()
}

// Load writes recs of kind as mode says, in one transaction.
func (db *DB) Load(ctx context.Context, kind metadata.Kind, recs []metadata.Record, mode metadata.LoadMode) (metadata.LoadResult, error) {
	t, err := bulkTableOf(kind)
	if err != nil {
		return metadata.LoadResult{}, err
	}
	for _, r := range recs {
		if err := t.check(r); err != nil {
			return metadata.LoadResult{}, fmt.Errorf("load %s %s: %w", kind, strings.Join(r.Key, " "), err)
		}
	}
	var res metadata.LoadResult
	load := func(tx bulkTx) error {
		res = metadata.LoadResult{} // a retried transaction starts over
		ids := map[string]int64{}
		found, err := t.existing(ctx, tx, recs)
		if err != nil {
			return fmt.Errorf("load %s: %w", kind, err)
		}
		for _, r := range recs {
			if err := t.load(ctx, tx, r, mode, ids, found, &res); err != nil {
				return fmt.Errorf("load %s %s: %w", kind, strings.Join(r.Key, " "), err)
			}
		}
		return nil
	}
	if mode == metadata.LoadCheck {
		// Reads only: no transaction, which on SQLite would take the write
		// lock (the pools begin IMMEDIATE transactions).
		return res, load(db.read)
	}
	return res, db.inTx(ctx, func(tx *stmtTx) error { return load(tx) })
}

// bulkTx is what loading a record needs: a write transaction, or for
// LoadCheck the read pool.
type bulkTx interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// existingChunk bounds the keys looked up by one query (and so its
// parameters: SQLite allows 32,766, PostgreSQL 65,535).
const existingChunk = 500

// existing reads the rows the records' keys name, by key (keyString):
// one query per chunk of records rather than one per record, which on
// PostgreSQL would cost a round trip each. The keys are joined in as a
// VALUES list, from which both databases look each row up by its index.
func (t *bulkTable) existing(ctx context.Context, tx bulkTx, recs []metadata.Record) (map[string][]any, error) {
	n := t.keyLen()
	kcols := make([]string, n)
	for i := range kcols {
		kcols[i] = fmt.Sprintf("k%d", i)
	}
	sel := t.keyExprs()
	for _, c := range t.values {
		sel = append(sel, "t."+c.name)
	}
	var on []string
	from := " FROM k"
	own := kcols
	if t.repo {
		from += " JOIN repositories r ON r.name = k.k0"
		on = append(on, "t.repo_id = r.id")
		own = kcols[1:]
	}
	for i, c := range t.key {
		on = append(on, "t."+c.name+" = k."+own[i])
	}
	from += " JOIN " + t.name + " t ON " + strings.Join(on, " AND ")
	found := make(map[string][]any, len(recs))
	for start := 0; start < len(recs); start += existingChunk {
		chunk := recs[start:min(start+existingChunk, len(recs))]
		tuples := make([]string, len(chunk))
		args := make([]any, 0, len(chunk)*n)
		for i, r := range chunk {
			tuples[i] = "(" + placeholders(n) + ")"
			args = append(args, strArgs(r.Key)...)
		}
		q := "WITH k(" + strings.Join(kcols, ", ") + ") AS (VALUES " + strings.Join(tuples, ", ") + ") SELECT " + strings.Join(sel, ", ") + from
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		there, err := t.scanRecords(rows)
		if err != nil {
			return nil, err
		}
		for _, r := range there {
			found[keyString(r.Key)] = r.Values
		}
	}
	return found, nil
}

// keyString is a record key as a map key (names hold no NUL).
func keyString(key []string) string { return strings.Join(key, "\x00") }

// check refuses a record of the wrong shape before anything is written.
func (t *bulkTable) check(r metadata.Record) error {
	if len(r.Key) != t.keyLen() || len(r.Values) != len(t.values) {
		return fmt.Errorf("record of %d keys and %d values, want %d and %d", len(r.Key), len(r.Values), t.keyLen(), len(t.values))
	}
	for i, c := range t.values {
		ok := false
		switch r.Values[i].(type) {
		case string:
			ok = c.typ == colText
		case int64:
			ok = c.typ == colInt
		case []byte:
			ok = c.typ == colBytes
		case bool:
			ok = c.typ == colBool
		}
		if !ok {
			return fmt.Errorf("column %s holds a %T", c.name, r.Values[i])
		}
	}
	return nil
}

// load writes one record, counting what it did in res; found holds the
// rows its batch found (existing).
func (t *bulkTable) load(ctx context.Context, tx bulkTx, r metadata.Record, mode metadata.LoadMode, ids map[string]int64, found map[string][]any, res *metadata.LoadResult) error {
	have, there := found[keyString(r.Key)]
	switch {
	case there && (len(t.values) == 0 || t.equal(have, r.Values)):
		res.Same++
		return nil
	case there && mode != metadata.LoadReplace:
		res.Differ = append(res.Differ, r.Key)
		return nil
	case !there && mode == metadata.LoadCheck:
		return t.insert(ctx, tx, r, mode, nil, nil, res) // counts, writes nothing
	}
	// where and args select the record's row by its key.
	var where []string
	var args []any
	key := r.Key
	if t.repo {
		id, ok := ids[key[0]]
		if !ok {
			err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ?`, key[0]).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("repository %s is not there: load the repositories first", key[0])
			}
			if err != nil {
				return err
			}
			ids[key[0]] = id
		}
		where, args = append(where, "repo_id = ?"), append(args, id)
		key = key[1:]
	}
	for i, c := range t.key {
		where, args = append(where, c.name+" = ?"), append(args, key[i])
	}
	if !there {
		return t.insert(ctx, tx, r, mode, where, args, res)
	}
	set := make([]string, len(t.values))
	for i, c := range t.values {
		set[i] = c.name + " = ?"
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+t.name+" SET "+strings.Join(set, ", ")+" WHERE "+strings.Join(where, " AND "),
		append(append([]any(nil), r.Values...), args...)...); err != nil {
		return err
	}
	if t.changed != nil {
		if err := t.changed(ctx, tx.(*stmtTx), r); err != nil {
			return err
		}
	}
	res.Replaced++
	return nil
}

// insert adds a missing record, unless another row forbids it.
func (t *bulkTable) insert(ctx context.Context, tx bulkTx, r metadata.Record, mode metadata.LoadMode, where []string, keyArgs []any, res *metadata.LoadResult) error {
	if t.clash != "" {
		var n int
		if err := tx.QueryRowContext(ctx, t.clash, r.Key[0]).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			res.Differ = append(res.Differ, r.Key)
			return nil
		}
	}
	if mode == metadata.LoadCheck {
		res.Added++
		return nil
	}
	var cols []string
	for _, w := range where {
		cols = append(cols, strings.TrimSuffix(w, " = ?"))
	}
	for _, c := range t.values {
		cols = append(cols, c.name)
	}
	args := append(append([]any(nil), keyArgs...), r.Values...)
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+t.name+" ("+strings.Join(cols, ", ")+") VALUES ("+placeholders(len(cols))+")", args...); err != nil {
		return err
	}
	if t.added != nil {
		// Not LoadCheck, so a write transaction.
		if err := t.added(ctx, tx.(*stmtTx), r); err != nil {
			return err
		}
	}
	if t.changed != nil {
		if err := t.changed(ctx, tx.(*stmtTx), r); err != nil {
			return err
		}
	}
	res.Added++
	return nil
}

// equal compares the values of two records of t, loose columns aside.
func (t *bulkTable) equal(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if t.values[i].loose {
			continue
		}
		if x, ok := a[i].([]byte); ok {
			y, ok := b[i].([]byte)
			if !ok || !bytes.Equal(x, y) {
				return false
			}
			continue
		}
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
