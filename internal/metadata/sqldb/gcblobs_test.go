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
	var removed, keptAfterRemove atomic.Bool
	done := make(chan error, 1)
	deleted, err := gc.DeleteUnusedBlob(ctx, d, time.Now().Add(time.Hour), func(ctx context.Context) error {
		go func() {
			err := push.KeepBlob(context.Background(), d, 1)
			keptAfterRemove.Store(removed.Load())
			done <- err
		}()
		waitForLockWaiter(t, watch, done) // this transaction's
		removed.Store(true)
		return nil
	})
	if err != nil || !deleted {
		t.Fatalf("DeleteUnusedBlob = %v, %v; want deleted", deleted, err)
	}
	if err := <-done; err != nil || !keptAfterRemove.Load() {
		t.Fatalf("KeepBlob = %v, returned after the bytes went: %v; want nil, true", err, keptAfterRemove.Load())
	}
	if got, err := gc.UnusedBlobs(ctx, time.Now().Add(time.Hour), time.Time{}, "", 0); err != nil || len(got) != 1 || got[0].Digest != d {
		t.Errorf("UnusedBlobs after the push = %v, %v; want %s recorded again", got, err, d)
	}
}

// waitForLockWaiter returns once a session of the database waits for a
// lock, or fails the test if done is closed first.
func waitForLockWaiter(t *testing.T, watch *sql.DB, done <-chan error) {
	t.Helper()
	for {
		select {
		case err := <-done:
			t.Fatalf("returned (%v) without waiting for the lock", err)
		default:
		}
		var waiting int
		if err := watch.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		runtime.Gosched()
	}
}

// A push that links a blob its repository already links renews the link;
// a collection on another replica that prunes the link meanwhile (it holds
// the row when the renewal comes) must not leave the push believing the
// blob linked: the link is made again.
func TestPostgres_LinkBlobRenewalRacingPruneLinksAgain(t *testing.T) {
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
	d := digest.FromString("layer")
	if err := push.LinkBlob(ctx, "app", d, 5); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(time.Hour) // the link is older than the grace

	tx, err := gc.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	stx := &stmtTx{Tx: tx, db: gc}
	// pgPruneBlobLinks's first step: the candidate is locked.
	if _, err := stx.ExecContext(ctx, `SELECT 1 FROM repo_blobs WHERE `+prunableLinks+` FOR UPDATE`, cutoff.UnixNano()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- push.LinkBlob(context.Background(), "app", d, 5) }()
	waitForLockWaiter(t, watch, done)
	if n, err := pgPruneBlobLinks(ctx, stx, cutoff.UnixNano()); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want the link pruned", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("LinkBlob: %v", err)
	}
	if size, err := push.BlobSize(ctx, "app", d); err != nil || size != 5 {
		t.Errorf("BlobSize after LinkBlob returned = %d, %v; want the blob linked", size, err)
	}
	if st, err := push.Stats(ctx); err != nil || st.Blobs != 1 || st.Bytes != 5 {
		t.Errorf("Stats = %+v, %v; want 1 blob of 5 bytes", st, err)
	}
}
