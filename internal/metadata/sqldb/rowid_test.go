package sqldb

import (
	"bytes"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// textKeyedTables are the tables migration 29 stores as their key
// (WITHOUT ROWID).
var textKeyedTables = []string{"repo_blobs", "manifest_refs", "linked_blobs", "namespace_blobs", "namespace_usage", "ended_uploads"}

// Migration 29 rebuilds the text-keyed tables a push writes as WITHOUT
// ROWID. A database of version 28, made by migrations 1 to 28 as they ran
// then, keeps every row, every column, index, foreign key and check of
// those tables, and ends with the schema of a database created new; the
// log says the upgrade is under way before it starts.
func TestMigrate_TextKeyedTablesWithoutRowid(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	const v = 29

	// The rows, as wharf writes them, in a database of today's schema.
	newPath := filepath.Join(dir, "new.db")
	db := openSQLite(t, newPath)
	for i, repo := range []string{"team/app", "team/api", "other/app"} {
		layer := digest.FromString(fmt.Sprintf("layer %d", i%2))
		if err := db.LinkBlob(ctx, repo, layer, 100); err != nil {
			t.Fatal(err)
		}
		if err := db.PutManifest(ctx, testManifest(repo, fmt.Sprintf("image %d", i)), []string{"latest"}); err != nil {
			t.Fatal(err)
		}
		if err := db.EndUpload(ctx, repo, fmt.Sprintf("upload-%d", i), time.Unix(int64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if n := withoutRowid(t, db.read); n != len(textKeyedTables) {
		t.Fatalf("new database: %d of %d tables WITHOUT ROWID", n, len(textKeyedTables))
	}
	wantRows, wantSchema := dumpRows(t, db.read), sqliteSchema(t, db.read)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The same rows in a database of version 28.
	oldPath := filepath.Join(dir, "old.db")
	raw, err := sql.Open("sqlite", "file:"+oldPath)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1) // ATTACH belongs to a connection
	for i, m := range migrations[:v-1] {
		if _, err := raw.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	if _, err := raw.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
		INSERT INTO schema_migrations (version, applied_at) VALUES `+versions(v-1)); err != nil {
		t.Fatal(err)
	}
	copyRows(t, raw, newPath)
	if n := withoutRowid(t, raw); n != 0 {
		t.Fatalf("version 28: %d tables WITHOUT ROWID", n)
	}
	wantShapes := tableShapes(t, raw, textKeyedTables)
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	db, err = OpenSQLite(ctx, oldPath, slog.New(slog.NewTextHandler(&log, nil))) // applies migration 29
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	start := strings.Index(log.String(), `msg="applying metadata migrations" from_version=28 to_version=29`)
	if done := strings.Index(log.String(), `msg="metadata migration applied" version=29`); start < 0 || done < start {
		t.Errorf("log of the upgrade:\n%s\nwant it to say that migrations 28 to 29 are being applied, before it says 29 was", log.String())
	}
	if n := withoutRowid(t, db.read); n != len(textKeyedTables) {
		t.Errorf("migrated: %d of %d tables WITHOUT ROWID", n, len(textKeyedTables))
	}
	if got := dumpRows(t, db.read); got != wantRows {
		t.Errorf("rows after the migration:\n%s\nwant:\n%s", got, wantRows)
	}
	if got := tableShapes(t, db.read, textKeyedTables); got != wantShapes {
		t.Errorf("tables after the migration:\n%s\nwant those of version 28:\n%s", got, wantShapes)
	}
	if got := sqliteSchema(t, db.read); got != wantSchema {
		t.Errorf("schema after the migration:\n%s\nwant that of a new database:\n%s", got, wantSchema)
	}
	if _, err := db.GetTaggedManifest(ctx, "team/api", "latest"); err != nil {
		t.Errorf("GetTaggedManifest after the migration: %v", err)
	}
}

// copyRows copies every row of every table of the database at path into
// the same tables of raw, column by column.
func copyRows(t *testing.T, raw *sql.DB, path string) {
	t.Helper()
	ctx := t.Context()
	if _, err := raw.ExecContext(ctx, `ATTACH DATABASE ? AS src`, "file:"+path); err != nil {
		t.Fatal(err)
	}
	tables := queryColumn[string](t, raw, `SELECT name FROM src.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name`)
	for _, table := range tables {
		cols := strings.Join(queryColumn[string](t, raw, `SELECT '"' || name || '"' FROM pragma_table_info(?) ORDER BY cid`, table), ", ")
		if _, err := raw.ExecContext(ctx, fmt.Sprintf(`INSERT OR REPLACE INTO main.%s (%s) SELECT %s FROM src.%s`, table, cols, cols, table)); err != nil {
			t.Fatalf("copy %s: %v", table, err)
		}
	}
	if _, err := raw.ExecContext(ctx, `DETACH DATABASE src`); err != nil {
		t.Fatal(err)
	}
}

// dumpRows lists the rows of the text-keyed tables, failing when one of
// them is empty (the migration would then have nothing to carry over).
func dumpRows(t *testing.T, q *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range textKeyedTables {
		rows, err := q.QueryContext(t.Context(), `SELECT * FROM `+table+` ORDER BY 1, 2`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %v\n", table, vals)
			n++
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("no rows in %s: nothing to carry over", table)
		}
	}
	return b.String()
}

// sqliteSchema lists the schema's tables, indexes and triggers with their
// DDL.
func sqliteSchema(t *testing.T, q *sql.DB) string {
	t.Helper()
	return strings.Join(queryColumn[string](t, q, `SELECT type || ' ' || name || ' ' || tbl_name || ' ' || COALESCE(sql, '') FROM sqlite_schema ORDER BY type, name`), "\n")
}

// withoutRowid counts the text-keyed tables stored WITHOUT ROWID.
func withoutRowid(t *testing.T, q *sql.DB) (n int) {
	t.Helper()
	for _, table := range textKeyedTables {
		if strings.HasSuffix(tableDDL(t, q, table), "WITHOUT ROWID") {
			n++
		}
	}
	return n
}

// tableDDL is the CREATE TABLE statement of table.
func tableDDL(t *testing.T, q *sql.DB, table string) string {
	t.Helper()
	var ddl string
	if err := q.QueryRowContext(t.Context(), `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	return ddl
}

var checkClause = regexp.MustCompile(`(?i)\bCHECK\s*\(`)

// tableShapes describes each table as its constraints see it: columns
// (type, NOT NULL, default, place in the primary key), the indexes other
// than the primary key's (uniqueness, origin, partial, key columns), the
// foreign keys, and the CHECK clauses of its DDL. How rows are stored
// (rowid or not) is left out.
func tableShapes(t *testing.T, q *sql.DB, tables []string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range tables {
		// A key column counts as NOT NULL: a WITHOUT ROWID table makes it
		// so, where a rowid table allows NULL in a text key only by an old
		// SQLite quirk (no write of wharf's stores one; PostgreSQL's keys
		// are NOT NULL).
		for _, c := range queryColumn[string](t, q, `SELECT name || ' ' || type || ' notnull=' || ("notnull" OR pk > 0) || ' default=' || COALESCE(dflt_value, '-') || ' pk=' || pk || ' hidden=' || hidden
			FROM pragma_table_xinfo(?) ORDER BY cid`, table) {
			fmt.Fprintf(&b, "%s column %s\n", table, c)
		}
		for _, ix := range queryColumn[string](t, q, `SELECT name || ' unique=' || "unique" || ' origin=' || origin || ' partial=' || partial
			FROM pragma_index_list(?) WHERE origin <> 'pk' ORDER BY name`, table) {
			name, _, _ := strings.Cut(ix, " ")
			keys := queryColumn[string](t, q, `SELECT COALESCE(name, '<expr>') FROM pragma_index_info(?) ORDER BY seqno`, name)
			fmt.Fprintf(&b, "%s index %s on (%s)\n", table, ix, strings.Join(keys, ", "))
		}
		for _, fk := range queryColumn[string](t, q, `SELECT "from" || ' -> ' || "table" || '(' || COALESCE("to", '') || ') on update ' || on_update || ' on delete ' || on_delete
			FROM pragma_foreign_key_list(?) ORDER BY id, seq`, table) {
			fmt.Fprintf(&b, "%s foreign key %s\n", table, fk)
		}
		ddl := tableDDL(t, q, table)
		for _, loc := range checkClause.FindAllStringIndex(ddl, -1) {
			depth, end := 0, loc[1]-1
			for i := end; i < len(ddl); i++ {
				if ddl[i] == '(' {
					depth++
				} else if ddl[i] == ')' {
					if depth--; depth == 0 {
						end = i
						break
					}
				}
			}
			fmt.Fprintf(&b, "%s %s\n", table, strings.Join(strings.Fields(ddl[loc[0]:end+1]), " "))
		}
	}
	return b.String()
}

// queryColumn is the first column of every row q answers.
func queryColumn[T any](t *testing.T, q *sql.DB, query string, args ...any) []T {
	t.Helper()
	rows, err := q.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
