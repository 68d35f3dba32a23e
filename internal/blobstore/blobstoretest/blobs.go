package blobstoretest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

func testStatMissingBlob(t *testing.T, s blobstore.Store) {
	d := sha256Of([]byte("missing"))
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat(%s) error = %v; want ErrNotFound", d, err)
	}
}

func testOpenMissingBlob(t *testing.T, s blobstore.Store) {
	d := sha256Of([]byte("missing"))
	r, _, err := s.Open(t.Context(), d)
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Open(%s) error = %v; want ErrNotFound", d, err)
	}
}

func testDeleteMissingBlob(t *testing.T, s blobstore.Store) {
	d := sha256Of([]byte("missing"))
	if err := s.Delete(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Delete(%s) error = %v; want ErrNotFound", d, err)
	}
}

func testCommitChunked(t *testing.T, s blobstore.Store) {
	b := data(10_000, 1)
	d := sha256Of(b)
	id, st := startUpload(t, s)
	for _, chunk := range [][2]int{{0, 1}, {1, 4096}, {4096, 9000}, {9000, 10_000}} {
		st = write(t, s, id, int64(chunk[0]), st, b[chunk[0]:chunk[1]])
	}
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

func testCommitEmpty(t *testing.T, s blobstore.Store) {
	d := commit(t, s, nil)
	wantBlob(t, s, d, nil)
}

// onlyReader hides optional interfaces (io.WriterTo), like an HTTP body
// read through a hashing io.TeeReader does.
type onlyReader struct{ io.Reader }

func testCommitLarge(t *testing.T, s blobstore.Store) {
	b := data(3<<20+7, 2)
	commitInChunks(t, s, b, len(b)/2)
}

// testCommitAcrossParts writes chunks that cross 5 MiB part boundaries
// and end mid-part, so that a driver with parts carries tails over.
func testCommitAcrossParts(t *testing.T, s blobstore.Store) {
	const mib = 1 << 20
	commitInChunks(t, s, data(12*mib+3, 18), 2*mib+1, 4*mib, 3*mib+5)
}

// commitInChunks uploads b in chunks of the sizes given (the rest last),
// each through io.Copy from a reader without WriterTo, commits it and
// checks the blob.
func commitInChunks(t *testing.T, s blobstore.Store, b []byte, sizes ...int) {
	t.Helper()
	d := sha256Of(b)
	id, st := startUpload(t, s)
	var bounds [][2]int64
	var at int64
	for _, n := range sizes {
		bounds = append(bounds, [2]int64{at, at + int64(n)})
		at += int64(n)
	}
	bounds = append(bounds, [2]int64{at, int64(len(b))})
	for _, part := range bounds {
		w, err := s.WriteUpload(t.Context(), id, part[0], st)
		if err != nil {
			t.Fatalf("WriteUpload(%d): %v", part[0], err)
		}
		n, err := io.Copy(w, onlyReader{bytes.NewReader(b[part[0]:part[1]])})
		if err != nil || n != part[1]-part[0] {
			w.Close()
			t.Fatalf("io.Copy = %d, %v; want %d, nil", n, err, part[1]-part[0])
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		st = w.State()
	}
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

func testCommitSHA512(t *testing.T, s blobstore.Store) {
	b := data(5000, 3)
	d := sha512Of(b)
	id, st := upload(t, s, b)
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload(%s): %v", d, err)
	}
	wantBlob(t, s, d, b)
	// Same bytes under another algorithm are a different blob.
	wantNoBlob(t, s, sha256Of(b))
}

func testOpenSeeks(t *testing.T, s blobstore.Store) {
	b := data(8192, 4)
	d := commit(t, s, b)
	r, _, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()

	if pos, err := r.Seek(1000, io.SeekStart); err != nil || pos != 1000 {
		t.Fatalf("Seek(1000, start) = %d, %v", pos, err)
	}
	got := make([]byte, 100)
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, b[1000:1100]) {
		t.Fatalf("read after Seek(1000): %v, or bytes differ", err)
	}
	if pos, err := r.Seek(-10, io.SeekEnd); err != nil || pos != 8182 {
		t.Fatalf("Seek(-10, end) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(rest, b[8182:]) {
		t.Fatalf("read after Seek(-10, end): %v, or bytes differ", err)
	}
	if pos, err := r.Seek(0, io.SeekStart); err != nil || pos != 0 {
		t.Fatalf("Seek(0, start) = %d, %v", pos, err)
	}
}

func testDeleteInvisible(t *testing.T, s blobstore.Store) {
	b := data(100, 5)
	d := commit(t, s, b)
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNoBlob(t, s, d)
	if err := s.Delete(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("second Delete error = %v; want ErrNotFound", err)
	}
	// A deleted digest can be pushed again.
	commit(t, s, b)
	wantBlob(t, s, d, b)
}

func testInvalidDigests(t *testing.T, s blobstore.Store) {
	hex64 := strings.Repeat("ab", 32)
	invalid := []digest.Digest{
		"",
		"sha256",
		"sha256:",
		"sha256:abc",
		"sha256:" + digest.Digest(strings.ToUpper(hex64)),
		"sha256:" + digest.Digest(hex64) + "00",
		"sha256:../../../../../../etc/passwd",
		"sha256:" + digest.Digest(hex64[:60]) + "/../",
		"../sha256:" + digest.Digest(hex64),
		"sha256/../x:" + digest.Digest(hex64),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha512:" + digest.Digest(hex64),
	}
	b := []byte("payload")
	id, st := upload(t, s, b)
	for _, d := range invalid {
		_, err := s.Stat(t.Context(), d)
		wantInvalid(t, "Stat("+string(d)+")", err)
		r, _, err := s.Open(t.Context(), d)
		if err == nil {
			r.Close()
		}
		wantInvalid(t, "Open("+string(d)+")", err)
		wantInvalid(t, "Delete("+string(d)+")", s.Delete(t.Context(), d))
		err = s.CommitUpload(t.Context(), id, st, d, int64(len(b)))
		wantInvalid(t, "CommitUpload("+string(d)+")", err)
	}
	// A rejected commit leaves the upload as it was.
	wantUpload(t, s, id, st, b)
}
