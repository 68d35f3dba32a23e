package sqldb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/metadatatest"
)

func TestSQLite_Contract(t *testing.T) {
	metadatatest.Run(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_CollectorContract(t *testing.T) {
	metadatatest.RunCollector(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

// openSQLite opens the database at path, closing it when the test ends.
func openSQLite(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := OpenSQLite(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("OpenSQLite(%s): %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// reopen closes db and opens path again.
func reopen(t *testing.T, db *DB, path string) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openSQLite(t, path)
}

func testManifest(repo, seed string) *metadata.Manifest {
	content := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"seed":%q}}`, seed)
	return &metadata.Manifest{
		Repo:         repo,
		Digest:       digest.FromString(content),
		MediaType:    "application/vnd.oci.image.manifest.v1+json",
		Content:      []byte(content),
		ArtifactType: "application/vnd.oci.image.config.v1+json",
		Blobs:        []digest.Digest{digest.FromString(seed + " config"), digest.FromString(seed + " layer")},
	}
}

func TestOpenSQLite_DataSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "metadata.db")
	db := openSQLite(t, path)

	layer := digest.FromString("layer")
	if err := db.LinkBlob(ctx, "library/ubuntu", layer, 1234); err != nil {
		t.Fatal(err)
	}
	img := testManifest("library/ubuntu", "image")
	if err := db.PutManifest(ctx, img, []string{"latest", "24.04"}); err != nil {
		t.Fatal(err)
	}
	sig := testManifest("library/ubuntu", "signature")
	sig.Subject, sig.ArtifactType = img.Digest, "application/vnd.example.signature"
	sig.Annotations = map[string]string{"org.opencontainers.image.created": "2024-05-01T12:00:00Z"}
	if err := db.PutManifest(ctx, sig, nil); err != nil {
		t.Fatal(err)
	}

	// An upload session half-way through, with the running hash state.
	payload := bytes.Repeat([]byte("wharf\x00\xff"), 1000)
	half := len(payload) / 2
	h := sha256.New()
	initial, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	h.Write(payload[:half])
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Minute)
	u := &metadata.Upload{ID: "upload-1", Repo: "library/ubuntu", Algorithm: digest.SHA256,
		HashState: initial, StartedAt: started, UpdatedAt: started}
	if err := db.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	advanced := *u
	advanced.Offset, advanced.HashState, advanced.UpdatedAt = int64(half), state, time.Now()
	if err := db.AdvanceUpload(ctx, &advanced, 0); err != nil {
		t.Fatal(err)
	}

	db = reopen(t, db, path)

	if repos, err := db.ListRepositories(ctx, "", 0); err != nil || !slices.Equal(repos, []string{"library/ubuntu"}) {
		t.Errorf("ListRepositories after reopen = %q, %v", repos, err)
	}
	if size, err := db.BlobSize(ctx, "library/ubuntu", layer); err != nil || size != 1234 {
		t.Errorf("BlobSize after reopen = %d, %v; want 1234, nil", size, err)
	}
	if tags, err := db.ListTags(ctx, "library/ubuntu", "", 0); err != nil || !slices.Equal(tags, []string{"24.04", "latest"}) {
		t.Errorf("ListTags after reopen = %q, %v", tags, err)
	}
	got, err := db.GetTaggedManifest(ctx, "library/ubuntu", "24.04")
	if err != nil || got.Digest != img.Digest || !bytes.Equal(got.Content, img.Content) {
		t.Errorf("GetTaggedManifest after reopen = %+v, %v; want %s", got, err, img.Digest)
	}
	refs, err := db.Referrers(ctx, "library/ubuntu", img.Digest, "")
	if err != nil || len(refs) != 1 || refs[0].Digest != sig.Digest ||
		refs[0].Annotations["org.opencontainers.image.created"] != "2024-05-01T12:00:00Z" {
		t.Errorf("Referrers after reopen = %+v, %v; want %s with its annotations", refs, err, sig.Digest)
	}

	gotU, err := db.GetUpload(ctx, u.Repo, u.ID)
	if err != nil {
		t.Fatalf("GetUpload after reopen: %v", err)
	}
	if gotU.Offset != int64(half) || !bytes.Equal(gotU.HashState, state) || !gotU.UpdatedAt.Equal(advanced.UpdatedAt) {
		t.Errorf("upload after reopen = offset %d, %d state bytes, updated %v; want %d, %d, %v",
			gotU.Offset, len(gotU.HashState), gotU.UpdatedAt, half, len(state), advanced.UpdatedAt)
	}
	// The stored state resumes the hash where it stopped.
	resumed := sha256.New()
	if err := resumed.(encoding.BinaryUnmarshaler).UnmarshalBinary(gotU.HashState); err != nil {
		t.Fatalf("restoring hash state: %v", err)
	}
	resumed.Write(payload[half:])
	if got, want := digest.NewDigest(digest.SHA256, resumed), digest.FromBytes(payload); got != want {
		t.Errorf("resumed hash = %s; want %s", got, want)
	}
	// And the session can still advance from where it was.
	next := *gotU
	next.Offset = int64(len(payload))
	if err := db.AdvanceUpload(ctx, &next, int64(half)); err != nil {
		t.Errorf("AdvanceUpload after reopen: %v", err)
	}
}

// logCounter counts the log records with a given message.
type logCounter struct {
	mu    sync.Mutex
	count map[string]int
}

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCounter) WithGroup(string) slog.Handler            { return c }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count[r.Message]++
	return nil
}

func (c *logCounter) n(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[msg]
}

func schemaVersions(t *testing.T, db *DB) []int {
	t.Helper()
	return queryColumn[int](t, db.read, `SELECT version FROM schema_migrations ORDER BY version`)
}

func TestOpenSQLite_MigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	var want []int
	for v := range len(migrations) {
		want = append(want, v+1)
	}
	const applied = "metadata migration applied"
	for i := range 3 {
		logs := &logCounter{count: map[string]int{}}
		db, err := OpenSQLite(t.Context(), path, slog.New(logs))
		if err != nil {
			t.Fatalf("open %d: %v", i+1, err)
		}
		if i == 0 {
			if err := db.PutManifest(t.Context(), testManifest("repo", "m"), []string{"latest"}); err != nil {
				t.Fatal(err)
			}
		}
		wantLogs := 0
		if i == 0 {
			wantLogs = len(migrations)
		}
		if got := logs.n(applied); got != wantLogs {
			t.Errorf("open %d logged %q %d times; want %d", i+1, applied, got, wantLogs)
		}
		if got := schemaVersions(t, db); !slices.Equal(got, want) {
			t.Errorf("open %d: schema_migrations versions = %v; want %v", i+1, got, want)
		}
		if _, err := db.GetTaggedManifest(t.Context(), "repo", "latest"); err != nil {
			t.Errorf("open %d: GetTaggedManifest: %v", i+1, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenSQLite_RefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	db := openSQLite(t, path)
	if err := db.PutManifest(t.Context(), testManifest("repo", "m"), []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	// A newer wharf has migrated this database further.
	newer := len(migrations) + 1
	if _, err := db.write.ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, newer, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	got, err := OpenSQLite(t.Context(), path, slog.New(slog.DiscardHandler))
	if err == nil {
		got.Close()
		t.Fatalf("OpenSQLite of a schema version %d database succeeded; want an error", newer)
	}
	if got != nil {
		t.Errorf("OpenSQLite returned a DB with error %v", err)
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("error %v does not match ErrSchemaTooNew", err)
	}
	// The message is what an operator sees: it names both versions and
	// says what to do.
	msg := err.Error()
	for _, want := range []string{fmt.Sprint(newer), fmt.Sprint(len(migrations)), "newer", "upgrade"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}

	// Refusing left the database as it was.
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var version, manifests int
	if err := raw.QueryRowContext(t.Context(), `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != newer {
		t.Errorf("schema version after refusal = %d, %v; want %d", version, err, newer)
	}
	if err := raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM manifests`).Scan(&manifests); err != nil || manifests != 1 {
		t.Errorf("manifests after refusal = %d, %v; want 1", manifests, err)
	}
}

func TestOpenSQLite_TwoHandlesSeeEachOthersWrites(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "metadata.db")
	a, b := openSQLite(t, path), openSQLite(t, path)

	m := testManifest("repo", "m")
	if err := a.PutManifest(ctx, m, []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetTaggedManifest(ctx, "repo", "latest"); err != nil || got.Digest != m.Digest {
		t.Errorf("b.GetTaggedManifest after a.PutManifest = %v, %v; want %s", got, err, m.Digest)
	}
	d := digest.FromString("blob")
	if err := b.LinkBlob(ctx, "repo", d, 9); err != nil {
		t.Fatal(err)
	}
	if size, err := a.BlobSize(ctx, "repo", d); err != nil || size != 9 {
		t.Errorf("a.BlobSize after b.LinkBlob = %d, %v; want 9, nil", size, err)
	}
	if err := b.DeleteTag(ctx, "repo", "latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetTaggedManifest(ctx, "repo", "latest"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("a.GetTaggedManifest after b.DeleteTag error = %v; want ErrNotFound", err)
	}

	// The offset compare-and-set guards a session across replicas.
	ts := time.Now()
	u := &metadata.Upload{ID: "u", Repo: "repo", Algorithm: digest.SHA256, HashState: []byte{1}, StartedAt: ts, UpdatedAt: ts}
	if err := a.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	fromB, fromA := *u, *u
	fromB.Offset, fromA.Offset = 10, 20
	if err := b.AdvanceUpload(ctx, &fromB, 0); err != nil {
		t.Fatalf("b.AdvanceUpload: %v", err)
	}
	if err := a.AdvanceUpload(ctx, &fromA, 0); !errors.Is(err, metadata.ErrConflict) {
		t.Errorf("a.AdvanceUpload from a stale offset error = %v; want ErrConflict", err)
	}
	if got, err := a.GetUpload(ctx, "repo", "u"); err != nil || got.Offset != 10 {
		t.Errorf("a.GetUpload = %+v, %v; want offset 10", got, err)
	}

	// Writers on both handles at once queue on the file lock; none fails.
	const perHandle = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*perHandle)
	for i := range 2 * perHandle {
		db := []*DB{a, b}[i%2]
		wg.Go(func() {
			errs <- db.PutManifest(ctx, testManifest("repo/shared", fmt.Sprint(i)), []string{"latest", fmt.Sprint("t", i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent PutManifest: %v", err)
		}
	}
	for _, db := range []*DB{a, b} {
		if tags, err := db.ListTags(ctx, "repo/shared", "", 0); err != nil || len(tags) != 2*perHandle+1 {
			t.Errorf("ListTags(repo/shared) = %d tags, %v; want %d", len(tags), err, 2*perHandle+1)
		}
	}
}

// Two processes starting at once on a new database file must both open it:
// one applies the migrations, the other waits and finds them applied. The
// race is timing-dependent, so the test repeats it on fresh files.
func TestOpenSQLite_ConcurrentFirstOpen(t *testing.T) {
	const attempts, n = 25, 2
	for attempt := range attempts {
		path := filepath.Join(t.TempDir(), "metadata.db")
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				db, err := OpenSQLite(t.Context(), path, slog.New(slog.DiscardHandler))
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("attempt %d: OpenSQLite %d of %d opening a new file together: %v", attempt, i+1, n, err)
			}
		}
	}
}

func TestOpenSQLite_UsesWALAndForeignKeys(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	var mode string
	if err := db.read.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	for name, pool := range map[string]*sql.DB{"read": db.read, "write": db.write} {
		var fk int
		if err := pool.QueryRowContext(t.Context(), `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s pool: foreign_keys = %d, %v; want 1", name, fk, err)
		}
	}
}

func TestOpenSQLite_NilLoggerIsSilent(t *testing.T) {
	// Like blobstore/fs.New, a nil logger means "log nothing".
	path := filepath.Join(t.TempDir(), "metadata.db")
	var db *DB
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("OpenSQLite with a nil logger panicked: %v", r)
			}
		}()
		db, err = OpenSQLite(t.Context(), path, nil)
	}()
	if err != nil {
		t.Fatalf("OpenSQLite with a nil logger: %v", err)
	}
	if db != nil {
		db.Close()
	}
}

func TestPutManifest_RetagUpdatesPushedAt(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	pushedAt := func(tag string) (digest.Digest, time.Time) {
		t.Helper()
		var d string
		var ns int64
		err := db.read.QueryRowContext(ctx,
			`SELECT t.digest, t.pushed_at FROM tags t JOIN repositories r ON r.id = t.repo_id
			 WHERE r.name = 'repo' AND t.name = ?`, tag).Scan(&d, &ns)
		if err != nil {
			t.Fatalf("reading tag %s: %v", tag, err)
		}
		return digest.Digest(d), fromNanos(ns)
	}

	old, cur := testManifest("repo", "old"), testManifest("repo", "new")
	if err := db.PutManifest(ctx, old, []string{"latest", "v1"}); err != nil {
		t.Fatal(err)
	}
	d1, t1 := pushedAt("latest")
	if d1 != old.Digest || t1.IsZero() {
		t.Fatalf("latest = %s at %v; want %s at a pushed time", d1, t1, old.Digest)
	}
	_, v1At := pushedAt("v1")

	if err := db.PutManifest(ctx, cur, []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	d2, t2 := pushedAt("latest")
	if d2 != cur.Digest || !t2.After(t1) {
		t.Errorf("after re-tagging latest = %s at %v; want %s after %v", d2, t2, cur.Digest, t1)
	}
	// Tags not named in the push keep their time.
	if _, got := pushedAt("v1"); !got.Equal(v1At) {
		t.Errorf("v1 pushed at %v after another tag moved; want %v", got, v1At)
	}

	// Pushing the same manifest to the same tag again is a push too.
	if err := db.PutManifest(ctx, cur, []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	if d3, t3 := pushedAt("latest"); d3 != cur.Digest || !t3.After(t2) {
		t.Errorf("after re-pushing latest = %s at %v; want %s after %v", d3, t3, cur.Digest, t2)
	}
}

// A write transaction that runs a new query again (a loop over digests)
// prepares it on its connection for the rest of the transaction, and the
// query is prepared on the write pool once the transaction ends.
func TestStmtTx_PreparesAQueryItRunsAgain(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	const q = `SELECT COUNT(*) FROM repositories WHERE name = ?`
	err := db.inTx(t.Context(), func(tx *stmtTx) error {
		for i := range 3 {
			var n int
			if err := tx.QueryRowContext(t.Context(), q, fmt.Sprint("repo", i)).Scan(&n); err != nil {
				return err
			}
			if _, local := tx.local[q]; local != (i > 0) {
				t.Errorf("after run %d: prepared in the transaction = %v, want %v", i+1, local, i > 0)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := db.wstmts.Load(q); !ok {
		t.Error("the query is not prepared on the write pool after the transaction")
	}
}

// Commits that bring the log past SQLite's usual checkpoint length reach
// the database file soon after, though the writer's own threshold is far
// longer: the checkpointer copies them there, beside the writers.
func TestOpenSQLite_CheckpointsBesideTheWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	db := openSQLite(t, path)
	var backstop int
	if err := db.write.QueryRowContext(t.Context(), `PRAGMA wal_autocheckpoint`).Scan(&backstop); err != nil || backstop != checkpointBackstop {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want %d", backstop, err, checkpointBackstop)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.Size()
	// About 1.5 times checkpointFrames pages of manifests (8 each), a fifth
	// of the writer's threshold.
	const n, size = 192, 32 << 10
	for i := range n {
		m := testManifest("team/app", fmt.Sprint(i))
		m.Content = append(m.Content, bytes.Repeat([]byte(" "), size)...)
		m.Digest = digest.FromBytes(m.Content)
		if err := db.PutManifest(t.Context(), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= before+n*size/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file of %d bytes (%d before the writes): the log was not checkpointed within 10s", fi.Size(), before)
		}
	}
}
