package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/blobstoretest"
	"github.com/wharf/wharf/internal/servicetest"
)

const testPart = minPartSize // the smallest S3 allows, so tests cross parts cheaply

func newStore(t *testing.T) (*Store, *servicetest.S3) {
	t.Helper()
	srv := servicetest.StartS3(t)
	cfg := Config{
		Bucket: srv.Bucket(t), Prefix: "reg/", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: testPart,
	}
	s, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, srv
}

func data(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func sha256Of(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:]))
}

// writeChunk appends b with one writer, in writes of odd sizes, and returns
// the state to record.
func writeChunk(t *testing.T, s *Store, id string, state []byte, b []byte) []byte {
	t.Helper()
	size, err := s.UploadSize(t.Context(), id, state)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.WriteUpload(t.Context(), id, size, state)
	if err != nil {
		t.Fatalf("WriteUpload at %d: %v", size, err)
	}
	for len(b) > 0 {
		n := min(len(b), 777_777)
		if _, err := w.Write(b[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		b = b[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return w.State()
}

func wantBlob(t *testing.T, s *Store, d digest.Digest, want []byte) {
	t.Helper()
	r, size, err := s.Open(t.Context(), d)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Open(%s) = %d, %v; want %d", d, size, err, len(want))
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("blob %s: read %d bytes (err %v) that differ from the %d written", d, len(got), err, len(want))
	}
}

// wantNoUploadObjects checks that nothing of upload id is left in the bucket.
func wantNoUploadObjects(t *testing.T, s *Store, id string) {
	t.Helper()
	for obj := range s.client.ListObjects(t.Context(), s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix + "uploads/" + id + "/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		t.Errorf("upload %s left %s behind", id, obj.Key)
	}
	res, err := s.core.ListMultipartUploads(t.Context(), s.cfg.Bucket, s.cfg.Prefix+"uploads/"+id+"/", "", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Uploads) > 0 {
		t.Errorf("upload %s left %d multipart uploads open", id, len(res.Uploads))
	}
}

func TestUpload_ChunksAcrossPartsBecomeBlob(t *testing.T) {
	s, _ := newStore(t)
	// Chunks that end mid-part, exactly on a part, and inside the tail.
	sizes := []int{1 << 20, 7 << 20, 2 << 20, 100, testPart - 100 - (10<<20)%testPart, 3}
	var all []byte
	for i, n := range sizes {
		all = append(all, data(n, byte(i))...)
	}
	id := "chunked-1"
	state, err := s.StartUpload(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, n := range sizes {
		state = writeChunk(t, s, id, state, all[off:off+n])
		off += n
	}
	if size, _ := s.UploadSize(t.Context(), id, state); size != int64(len(all)) {
		t.Fatalf("UploadSize = %d, want %d", size, len(all))
	}
	d := sha256Of(all)
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("blob visible before commit: %v", err)
	}
	if err := s.CommitUpload(t.Context(), id, state, d, int64(len(all))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, all)
	wantNoUploadObjects(t, s, id)
}

func TestUpload_SmallAndEmptyBlobs(t *testing.T) {
	s, _ := newStore(t)
	for i, b := range [][]byte{nil, []byte("{}"), data(testPart, 9)} {
		id := "small-" + string(rune('a'+i))
		state, _ := s.StartUpload(t.Context(), id)
		if len(b) > 0 {
			state = writeChunk(t, s, id, state, b)
		}
		d := sha256Of(b)
		if err := s.CommitUpload(t.Context(), id, state, d, int64(len(b))); err != nil {
			t.Fatalf("CommitUpload of %d bytes: %v", len(b), err)
		}
		wantBlob(t, s, d, b)
		wantNoUploadObjects(t, s, id)
	}
}

func TestUpload_RetryFromRecordedStateReplacesLaterBytes(t *testing.T) {
	s, _ := newStore(t)
	b := data(12<<20, 3)
	id := "retry"
	s0, _ := s.StartUpload(t.Context(), id)
	s1 := writeChunk(t, s, id, s0, b[:6<<20])
	// A chunk whose caller never recorded its state (it crashed, or the
	// client went away): parts and a tail past s1 exist in the bucket.
	_ = writeChunk(t, s, id, s1, data(9<<20, 99))
	// The retry starts from the recorded state.
	s2 := writeChunk(t, s, id, s1, b[6<<20:])
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, s2, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

// A writer that should have stopped (it lost its claim on the session
// while stalled) writes from the state it started with, after the
// session's writer recorded a tail of the same length: the tails have
// different keys, so the recorded one is intact and commits.
func TestUpload_StaleWriterCannotReplaceRecordedTail(t *testing.T) {
	s, _ := newStore(t)
	id := "zombie"
	s0, _ := s.StartUpload(t.Context(), id)
	s1 := writeChunk(t, s, id, s0, []byte("recorded tail"))
	_ = writeChunk(t, s, id, s0, []byte("replaced tail"))
	s2 := writeChunk(t, s, id, s1, []byte(" and more"))
	want := []byte("recorded tail and more")
	d := sha256Of(want)
	if err := s.CommitUpload(t.Context(), id, s2, d, int64(len(want))); err != nil {
		t.Fatalf("CommitUpload after a stale writer's tail: %v", err)
	}
	wantBlob(t, s, d, want)
}

// A stale writer's part of the same number as a recorded part (sent after
// it) replaces that part's bytes in S3: the commit then fails cleanly, as
// for a missing upload, and reveals no blob.
func TestUpload_StaleWriterReplacingRecordedPartFailsCommitCleanly(t *testing.T) {
	s, _ := newStore(t)
	id := "zombie-part"
	s0, _ := s.StartUpload(t.Context(), id)
	// Part 1 starts the multipart upload that both writers then share.
	b := data(2*testPart+10, 1)
	s1 := writeChunk(t, s, id, s0, b[:testPart])
	s2 := writeChunk(t, s, id, s1, b[testPart:])
	_ = writeChunk(t, s, id, s1, data(testPart+10, 2))
	d := sha256Of(b)
	err := s.CommitUpload(t.Context(), id, s2, d, int64(len(b)))
	if !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("CommitUpload over a replaced part = %v; want ErrNotFound", err)
	}
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after the failed commit = %v; want ErrNotFound", err)
	}
	if err := s.CancelUpload(t.Context(), id, s2); err != nil {
		t.Fatalf("CancelUpload after the failed commit: %v", err)
	}
}

// An aborted writer stores nothing of what it buffered.
func TestUpload_AbortStoresNothing(t *testing.T) {
	s, _ := newStore(t)
	id := "aborted"
	s0, _ := s.StartUpload(t.Context(), id)
	w, err := s.WriteUpload(t.Context(), id, 0, s0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("buffered, never stored")); err != nil {
		t.Fatal(err)
	}
	w.(blobstore.Aborter).Abort()
	if err := w.Close(); err == nil {
		t.Error("Close after Abort succeeded; want an error")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded; want an error")
	}
	wantNoUploadObjects(t, s, id)
}

func TestUpload_ReadBackThenCommit(t *testing.T) {
	s, _ := newStore(t)
	b := data(11<<20+5, 4)
	id := "readback"
	st, _ := s.StartUpload(t.Context(), id)
	st = writeChunk(t, s, id, st, b)
	r, st, err := s.ReadUpload(t.Context(), id, st)
	if err != nil {
		t.Fatalf("ReadUpload: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadUpload: %d bytes, %v; want the %d written", len(got), err, len(b))
	}
	if _, err := s.WriteUpload(t.Context(), id, int64(len(b)), st); err == nil {
		t.Error("appending after a read-back succeeded; want an error")
	}
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
	wantNoUploadObjects(t, s, id)
}

func TestCommit_WrongSizeRevealsNothingAndDedups(t *testing.T) {
	s, _ := newStore(t)
	b := data(1000, 5)
	d := sha256Of(b)
	st, _ := s.StartUpload(t.Context(), "u1")
	st = writeChunk(t, s, "u1", st, b)
	if err := s.CommitUpload(t.Context(), "u1", st, d, 999); err == nil {
		t.Fatal("CommitUpload with the wrong size succeeded")
	}
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after a refused commit: %v", err)
	}
	if err := s.CommitUpload(t.Context(), "u1", st, d, 1000); err != nil {
		t.Fatal(err)
	}
	st2, _ := s.StartUpload(t.Context(), "u2")
	st2 = writeChunk(t, s, "u2", st2, b)
	if err := s.CommitUpload(t.Context(), "u2", st2, d, 1000); err != nil {
		t.Fatalf("second commit of the same digest: %v", err)
	}
	wantBlob(t, s, d, b)
	wantNoUploadObjects(t, s, "u2")
}

func TestCancel_RemovesEverything(t *testing.T) {
	s, _ := newStore(t)
	st, _ := s.StartUpload(t.Context(), "gone")
	st = writeChunk(t, s, "gone", st, data(6<<20, 6))
	st = writeChunk(t, s, "gone", st, data(100, 7))
	if err := s.CancelUpload(t.Context(), "gone", st); err != nil {
		t.Fatal(err)
	}
	wantNoUploadObjects(t, s, "gone")
}

func TestOpen_SeeksAndMissing(t *testing.T) {
	s, _ := newStore(t)
	b := data(3000, 8)
	d := sha256Of(b)
	st, _ := s.StartUpload(t.Context(), "seek")
	st = writeChunk(t, s, "seek", st, b)
	if err := s.CommitUpload(t.Context(), "seek", st, d, 3000); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Seek(2000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 500)
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, b[2000:2500]) {
		t.Fatalf("read after seek: %v", err)
	}
	other := sha256Of([]byte("never stored"))
	if _, _, err := s.Open(t.Context(), other); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Open of a missing blob: %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
}

func TestInvalidInputIsRefused(t *testing.T) {
	s, _ := newStore(t)
	for _, id := range []string{"", "../x", "a/b", "a b", strings.Repeat("a", 129)} {
		if _, err := s.StartUpload(t.Context(), id); err == nil {
			t.Errorf("StartUpload(%q) succeeded", id)
		}
	}
	if _, err := s.Stat(t.Context(), "sha256:../../etc"); err == nil || errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat of an invalid digest: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Stat(ctx, sha256Of(nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context: %v", err)
	}
}

func TestNew_SaysWhatToFix(t *testing.T) {
	srv := servicetest.StartS3(t)
	good := Config{Bucket: srv.Bucket(t), Endpoint: srv.Endpoint, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"missing bucket", func(c *Config) { c.Bucket = "no-such-bucket" }, "does not exist"},
		{"unknown access key", func(c *Config) { c.AccessKey = "nobody" }, "access key is not known"},
		{"wrong secret", func(c *Config) { c.SecretKey = "wrong" }, "secret key does not match"},
		{"unreachable", func(c *Config) { c.Endpoint = "http://127.0.0.1:1" }, "cannot reach the endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(t.Context(), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("New = %v; want one line saying %q", err, tc.want)
			}
		})
	}
	if _, err := New(t.Context(), good, nil); err != nil {
		t.Errorf("New with good settings: %v", err)
	}
}

// TestStore_Contract runs the blob store contract on versitygw, a fresh
// bucket per store, with 5 MiB parts so that its larger bodies cross them.
func TestStore_Contract(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstore.Store {
		s, _ := newStore(t)
		return s
	})
}
