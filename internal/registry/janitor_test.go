package registry_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// janitorWorld is a registry on real stores in a temporary directory.
type janitorWorld struct {
	svc     *registry.Service
	blobs   *fs.Store
	meta    *sqldb.DB
	uploads string // the blob store's upload area
	clock   *clocktest.Clock
}

// realStores opens a SQLite database and a filesystem blob store in a
// temporary directory (blobs under dir/blobs), closed when the test ends.
func realStores(t *testing.T) (dir string, meta *sqldb.DB, blobs *fs.Store) {
	t.Helper()
	dir = t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	meta, err = sqldb.OpenSQLite(t.Context(), filepath.Join(dir, "metadata.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	return dir, meta, blobs
}

func newJanitorWorld(t *testing.T) *janitorWorld {
	t.Helper()
	dir, meta, blobs := realStores(t)
	c := clocktest.New()
	svc := registry.New(meta, blobs, slog.New(slog.DiscardHandler), registry.Options{Now: c.Now})
	return &janitorWorld{svc: svc, blobs: blobs, meta: meta, uploads: filepath.Join(dir, "blobs", "uploads"), clock: c}
}

func (w *janitorWorld) uploadFiles(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(w.uploads)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

// The janitor removes the upload files a crash left without a session,
// once they are older than the purge age, and leaves every file a session
// owns: only stale sessions go, with their files.
func TestPurgeStaleUploads_RemovesOrphanFilesAfterThePurgeAge(t *testing.T) {
	ctx := t.Context()
	w := newJanitorWorld(t)
	const maxAge = time.Hour

	// A crash between creating an upload file and recording its session.
	if _, err := w.blobs.StartUpload(ctx, "crashed-before-record"); err != nil {
		t.Fatal(err)
	}
	// A crash between ending a session and removing its file.
	removed, err := w.svc.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.meta.DeleteUpload(ctx, "team/app", removed.ID); err != nil {
		t.Fatal(err)
	}
	// A session abandoned by its client.
	stale, err := w.svc.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}

	if n, err := w.svc.PurgeStaleUploads(ctx, maxAge); err != nil || n != 0 {
		t.Fatalf("purge within the purge age removed %d, %v; want 0", n, err)
	}
	if got := w.uploadFiles(t); len(got) != 3 {
		t.Fatalf("upload area within the purge age: %v; want all 3 files", got)
	}

	w.clock.Advance(maxAge + time.Minute)
	// A session started now: its file's write time (the real clock's) is
	// older than the cutoff, but a session owns it.
	live, err := w.svc.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("a push under way")
	if _, err := w.svc.WriteUpload(ctx, "team/app", live.ID, 0, bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}

	n, err := w.svc.PurgeStaleUploads(ctx, maxAge)
	if err != nil || n != 3 {
		t.Fatalf("purge after the purge age removed %d, %v; want 3 (two orphan files, one stale session)", n, err)
	}
	if got := w.uploadFiles(t); len(got) != 1 || !got[live.ID] {
		t.Fatalf("upload area after the purge: %v; want only the live session's file %s", got, live.ID)
	}
	if _, err := w.svc.UploadStatus(ctx, "team/app", stale.ID); err == nil {
		t.Error("the stale session survived the purge")
	}
	d := digest.FromBytes(content)
	if _, err := w.svc.CompleteUpload(ctx, "team/app", live.ID, d, nil, 0); err != nil {
		t.Fatalf("completing the live session after the purge: %v", err)
	}
	if _, err := w.svc.StatBlob(ctx, "team/app", d); err != nil {
		t.Fatalf("the live session's blob: %v", err)
	}
}
