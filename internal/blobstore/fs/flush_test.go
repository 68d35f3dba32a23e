package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

// writeChunks writes size bytes of upload id in chunks, each through its
// own writer as the PATCHes of a chunked push do, and returns the digest.
func writeChunks(t *testing.T, s *Store, id string, size, chunk int) digest.Digest {
	t.Helper()
	return writeChunksCloseErr(t, s, id, size, chunk, nil)
}

// writeChunksCloseErr is writeChunks where closing a writer may fail with
// closeErr (a sync that tests make fail).
func writeChunksCloseErr(t *testing.T, s *Store, id string, size, chunk int, closeErr error) digest.Digest {
	t.Helper()
	if _, err := s.StartUpload(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte("wharf"), chunk/5+1)[:chunk]
	h := sha256.New()
	for off := 0; off < size; off += chunk {
		w, err := s.WriteUpload(t.Context(), id, int64(off), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil && (closeErr == nil || !errors.Is(err, closeErr)) {
			t.Fatal(err)
		}
		h.Write(buf)
	}
	return digest.NewDigest(digest.SHA256, h)
}

// A PATCH's 202 records the session's new offset, and must survive a
// machine crash: closing the writer fsyncs every byte it wrote first.
func TestUpload_CloseSyncsWhatItWrote(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var syncedUpTo atomic.Int64
	s.syncFile = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if fi.Size() > syncedUpTo.Load() {
			syncedUpTo.Store(fi.Size())
		}
		return nil
	}
	if _, err := s.StartUpload(t.Context(), "patch"); err != nil {
		t.Fatal(err)
	}
	for off, n := int64(0), int64(1000); off < 3000; off += n {
		w, err := s.WriteUpload(t.Context(), "patch", off, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(bytes.Repeat([]byte{'w'}, int(n))); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := syncedUpTo.Load(); got != off+n {
			t.Fatalf("after the chunk ending at %d closed, %d bytes were synced", off+n, got)
		}
	}
}

func TestUpload_FlushesInBackgroundAndCommitWaits(t *testing.T) {
	var started, finished atomic.Int64
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.syncFile = func(f *os.File) error {
		started.Add(1)
		defer finished.Add(1)
		return f.Sync()
	}
	const size, chunk = 3*flushEvery + flushEvery/2, flushEvery / 2
	d := writeChunks(t, s, "chunked", size, chunk)
	if err := s.CommitUpload(t.Context(), "chunked", nil, d, size); err != nil {
		t.Fatal(err)
	}
	// A flush is skipped while another runs, so there may be fewer than
	// one per flushEvery bytes, but never none.
	if started.Load() == 0 {
		t.Fatalf("no background flush for a %d-byte upload", size)
	}
	if started.Load() != finished.Load() {
		t.Errorf("commit returned with %d of %d flushes running", started.Load()-finished.Load(), started.Load())
	}
	if _, ok := s.flushing.Load("chunked"); ok {
		t.Error("the upload's flush tracker outlived its commit")
	}
}

func TestUpload_FailedBackgroundFlushFailsEveryCommit(t *testing.T) {
	errDisk := errors.New("injected EIO")
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.syncFile = func(*os.File) error { return errDisk }
	const size = flushEvery + 1<<20
	d := writeChunksCloseErr(t, s, "doomed", size, size, errDisk)
	for range 2 {
		err := s.CommitUpload(t.Context(), "doomed", nil, d, size)
		if !errors.Is(err, errDisk) {
			t.Fatalf("CommitUpload error = %v; want the flush's failure", err)
		}
	}
	if _, _, err := s.Open(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Open after failed commits: %v; want ErrNotFound", err)
	}
	// A restarted server has forgotten the failure; the upload must still
	// not commit.
	restarted, err := New(s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.CommitUpload(t.Context(), "doomed", nil, d, size); err == nil {
		t.Fatal("after a restart, an upload whose background flush failed committed")
	}
	if err := s.CancelUpload(t.Context(), "doomed", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.flushing.Load("doomed"); ok {
		t.Error("cancel kept the failed upload's flush tracker")
	}
}

// A writeback hint queues I/O and may wait for the disk; the writes (and
// behind them the client's body) must go on meanwhile, with at most one
// hint running per writer.
func TestUpload_StalledWritebackHintDoesNotHoldUpWrites(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var calls, running, most atomic.Int64
	s.writeback = func(f *os.File, off, n int64) {
		calls.Add(1)
		if r := running.Add(1); r > most.Load() {
			most.Store(r)
		}
		defer running.Add(-1)
		<-gate
		startWriteback(f, off, n)
	}
	const size = 5 * writebackEvery
	if _, err := s.StartUpload(t.Context(), "stall"); err != nil {
		t.Fatal(err)
	}
	w, err := s.WriteUpload(t.Context(), "stall", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte("wharf-hint"), 1<<20/10+1)[:1<<20]
	h := sha256.New()
	wrote := make(chan error, 1)
	go func() {
		for range size / len(buf) {
			h.Write(buf)
			if _, err := w.Write(buf); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("writes waited for a stalled writeback hint")
	}
	if calls.Load() != 1 {
		t.Errorf("%d writeback hints started while the first one stalled; want 1", calls.Load())
	}
	close(gate)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d := digest.NewDigest(digest.SHA256, h)
	if err := s.CommitUpload(t.Context(), "stall", nil, d, size); err != nil {
		t.Fatal(err)
	}
	if most.Load() != 1 {
		t.Errorf("%d writeback hints ran at once; want 1", most.Load())
	}
	rc, n, err := s.Open(t.Context(), d)
	if err != nil || n != size {
		t.Fatalf("Open = %d, %v; want %d bytes", n, err, size)
	}
	defer rc.Close()
	got := sha256.New()
	if _, err := io.Copy(got, rc); err != nil || digest.NewDigest(digest.SHA256, got) != d {
		t.Errorf("committed blob reads back as %s (%v), want %s", digest.NewDigest(digest.SHA256, got), err, d)
	}
}

// The commit of an upload whose last writer synced it as it closed does
// not sync it again; anything else it syncs: an upload this process did
// not write (after a restart), and one whose writer's sync failed.
func TestCommitUpload_SyncsOnlyWhatNoCloseSynced(t *testing.T) {
	root := t.TempDir()
	errDisk := errors.New("injected EIO")
	var syncs atomic.Int64
	var failNext atomic.Bool
	open := func() *Store {
		s, err := New(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.syncFile = func(f *os.File) error {
			syncs.Add(1)
			if failNext.CompareAndSwap(true, false) {
				return errDisk
			}
			return f.Sync()
		}
		return s
	}
	commit := func(s *Store, id string, d digest.Digest, size int64) int64 {
		t.Helper()
		before := syncs.Load()
		if err := s.CommitUpload(t.Context(), id, nil, d, size); err != nil {
			t.Fatalf("CommitUpload(%s): %v", id, err)
		}
		return syncs.Load() - before
	}
	s := open()

	d := writeChunks(t, s, "closed", 3000, 1000)
	if n := commit(s, "closed", d, 3000); n != 0 {
		t.Errorf("commit after a synced Close: %d syncs, want 0", n)
	}

	other := []byte("written before a restart")
	d = writeChunks(t, s, "restarted", len(other), len(other))
	if n := commit(open(), "restarted", d, int64(len(other))); n != 1 {
		t.Errorf("commit by a restarted process: %d syncs, want 1", n)
	}

	failNext.Store(true)
	d = writeChunksCloseErr(t, s, "unsynced", 1000, 1000, errDisk)
	if n := commit(s, "unsynced", d, 1000); n != 1 {
		t.Errorf("commit after a Close whose sync failed: %d syncs, want 1", n)
	}
}
