package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

// writeChunks writes size bytes of upload id in chunks, each through its
// own writer as the PATCHes of a chunked push do, and returns the digest.
func writeChunks(t *testing.T, s *Store, id string, size, chunk int) digest.Digest {
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
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		h.Write(buf)
	}
	return digest.NewDigest(digest.SHA256, h)
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
	d := writeChunks(t, s, "doomed", size, size)
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
