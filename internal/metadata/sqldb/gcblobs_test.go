package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/servicetest"
)

// blobsMigration is the version that creates the blobs table.
func blobsMigration(t *testing.T) int {
	t.Helper()
	for i, m := range migrations {
		if strings.Contains(m, "CREATE TABLE blobs") {
			return i + 1
		}
	}
	t.Fatal("no migration creates the blobs table")
	return 0
}

// blobRow is a row of the blobs table.
type blobRow struct {
	digest       string
	size, usedAt int64
}

// testBackfill migrates raw, a database at the version before the blobs
// table holding links and a manifest that references an unlinked blob,
// with open, and checks that every linked or referenced blob is recorded.
func testBackfill(t *testing.T, raw *sql.DB, list []string, open func() *DB) {
	t.Helper()
	ctx := t.Context()
	v := blobsMigration(t)
	for i, m := range list[:v-1] {
		if _, err := raw.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	m := digest.FromString("manifest")
	for _, stmt := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
		`INSERT INTO schema_migrations (version, applied_at) VALUES ` + versions(v-1),
		`INSERT INTO repositories (id, name, created_at) VALUES (1, 'app', 0), (2, 'other', 0)`,
		fmt.Sprintf(`INSERT INTO repo_blobs (repo_id, digest, size, created_at) VALUES (1, '%s', 10, 100), (1, '%s', 20, 200), (2, '%s', 10, 300)`, a, b, a),
		fmt.Sprintf(`INSERT INTO manifests (repo_id, digest, media_type, content, size, created_at) VALUES (1, '%s', 'x', '', 0, 0)`, m),
		fmt.Sprintf(`INSERT INTO manifest_refs (repo_id, parent, child, kind) VALUES (1, '%s', '%s', 'blob'), (1, '%s', '%s', 'blob')`, m, a, m, c),
	} {
		if _, err := raw.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db := open()
	rows, err := db.read.QueryContext(ctx, `SELECT digest, size, used_at FROM blobs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []blobRow
	for rows.Next() {
		var r blobRow
		if err := rows.Scan(&r.digest, &r.size, &r.usedAt); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []blobRow{{a.String(), 10, 300}, {b.String(), 20, 200}, {c.String(), 0, 0}}
	cmp := func(x, y blobRow) int { return strings.Compare(x.digest, y.digest) }
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Errorf("blobs after the migration = %v; want %v", got, want)
	}
}

// versions is "(1, 0), (2, 0), …, (n, 0)".
func versions(n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("(%d, 0)", i+1)
	}
	return strings.Join(vs, ", ")
}

// Upgrading records the blobs that existed before: linked ones with their
// size and latest link, referenced but unlinked ones with size 0.
func TestMigrate_BackfillsBlobsOnSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	testBackfill(t, raw, migrations, func() *DB { return openSQLite(t, path) })
}

func TestMigrate_BackfillsBlobsOnPostgres(t *testing.T) {
	url := servicetest.StartPostgres(t).Database(t)
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	testBackfill(t, raw, pgMigrations, func() *DB {
		db, err := Open(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// On PostgreSQL a push's KeepBlob of a blob that a collection on another
// replica is deleting waits until the bytes are gone and the deletion is
// committed, and then records the blob again: a push never finds bytes a
// collection is about to delete.
func TestPostgres_KeepBlobWaitsForACollection(t *testing.T) {
	ctx := t.Context()
	url := servicetest.StartPostgres(t).Database(t)
	open := func() *DB {
		db, err := Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	gc, push := open(), open()
	watch, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	d := digest.FromString("x")
	if err := push.KeepBlob(ctx, d, 1); err != nil {
		t.Fatal(err)
	}
	type kept struct {
		err         error
		afterRemove bool
	}
	var removed atomic.Bool
	keepDone := make(chan kept, 1)
	deleted, err := gc.DeleteUnusedBlob(ctx, d, time.Now().Add(time.Hour), func(ctx context.Context) error {
		go func() {
			err := push.KeepBlob(context.Background(), d, 1)
			keepDone <- kept{err, removed.Load()}
		}()
		// Until the push's transaction waits for a lock (this one's).
		for {
			select {
			case k := <-keepDone:
				t.Errorf("KeepBlob returned (%v) while the collection held the record", k.err)
				keepDone <- k
				return nil
			default:
			}
			var waiting int
			if err := watch.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
				return err
			}
			if waiting > 0 {
				break
			}
			runtime.Gosched()
		}
		removed.Store(true)
		return nil
	})
	if err != nil || !deleted {
		t.Fatalf("DeleteUnusedBlob = %v, %v; want deleted", deleted, err)
	}
	k := <-keepDone
	if k.err != nil || !k.afterRemove {
		t.Fatalf("KeepBlob = %v, returned after the bytes went: %v; want nil, true", k.err, k.afterRemove)
	}
	if got, err := gc.UnusedBlobs(ctx, time.Now().Add(time.Hour), time.Time{}, "", 0); err != nil || len(got) != 1 || got[0].Digest != d {
		t.Errorf("UnusedBlobs after the push = %v, %v; want %s recorded again", got, err, d)
	}
}
