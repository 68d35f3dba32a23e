package blobstoretest

import (
	"context"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

// The contract of blobstore.BlobCreator, for the stores that are one; the
// others skip these tests.

// creator returns s as a BlobCreator, or skips the test.
func creator(t *testing.T, s blobstore.Store) blobstore.BlobCreator {
	t.Helper()
	bc, ok := s.(blobstore.BlobCreator)
	if !ok {
		t.Skip("the store writes blobs only through uploads (not a blobstore.BlobCreator)")
	}
	return bc
}

// sizes are the two ways to create a blob: with its size declared, and
// without.
var sizes = []string{"declared", "unknown"}

// createBlob writes b as blob d in writes of odd sizes, declaring its size
// or not, and returns the writer, not yet committed.
func createBlob(t *testing.T, bc blobstore.BlobCreator, d digest.Digest, b []byte, size string) blobstore.BlobWriter {
	t.Helper()
	n := int64(len(b))
	if size == "unknown" {
		n = -1
	}
	w, err := bc.CreateBlob(t.Context(), d, n)
	if err != nil {
		t.Fatalf("CreateBlob(%s): %v", d, err)
	}
	for len(b) > 0 {
		n := min(len(b), 777_777)
		if _, err := w.Write(b[:n]); err != nil {
			w.Abort()
			t.Fatalf("Write: %v", err)
		}
		b = b[n:]
	}
	return w
}

func testCreateCommit(t *testing.T, s blobstore.Store) {
	bc := creator(t, s)
	seed := byte(30)
	for _, size := range sizes {
		for _, n := range []int{0, 3000, 12<<20 + 5, 10 << 20} {
			seed++
			b := data(n, seed)
			d := sha256Of(b)
			w := createBlob(t, bc, d, b, size)
			// Parts of it may be in the store already, but not as d.
			wantNoBlob(t, s, d)
			if err := w.Commit(t.Context()); err != nil {
				t.Fatalf("Commit of %d bytes, size %s: %v", n, size, err)
			}
			w.Abort() // after Commit: nothing
			wantBlob(t, s, d, b)
			// The empty blob comes again with the next size.
			if err := s.Delete(t.Context(), d); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testCreateWrongSize(t *testing.T, s blobstore.Store) {
	bc := creator(t, s)
	b := data(12<<20+5, 38)
	d := sha256Of(b)
	for _, n := range []int{len(b) - 1, 3000} {
		w, err := bc.CreateBlob(t.Context(), d, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := w.Commit(t.Context()); err == nil {
			t.Errorf("Commit of %d of %d declared bytes succeeded", n, len(b))
		}
		wantNoBlob(t, s, d)
	}
	w, err := bc.CreateBlob(t.Context(), d, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b[:101]); err == nil {
		if err := w.Commit(t.Context()); err == nil {
			t.Errorf("Commit of 101 of 100 declared bytes succeeded")
		}
	}
	w.Abort()
	wantNoBlob(t, s, d)
}

func testCreateSHA512(t *testing.T, s blobstore.Store) {
	bc := creator(t, s)
	b := data(6<<20, 35)
	d := sha512Of(b)
	w := createBlob(t, bc, d, b, "declared")
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	wantBlob(t, s, d, b)
}

func testCreateAbort(t *testing.T, s blobstore.Store) {
	bc := creator(t, s)
	seed := byte(40)
	for _, size := range sizes {
		for _, n := range []int{3000, 12<<20 + 5} {
			seed++
			b := data(n, seed)
			d := sha256Of(b)
			createBlob(t, bc, d, b, size).Abort()
			wantNoBlob(t, s, d)
			// The digest is free for a later push.
			w := createBlob(t, bc, d, b, size)
			if err := w.Commit(t.Context()); err != nil {
				t.Fatalf("Commit after an abort: %v", err)
			}
			wantBlob(t, s, d, b)
		}
	}
}

// A commit to a digest that is stored already keeps the stored bytes: the
// writer's are dropped, not written over them. (The bytes written here do
// not hash to d, which a caller never commits, so that the test can tell
// which bytes the blob holds.)
func testCreateKeepsExisting(t *testing.T, s blobstore.Store) {
	bc := creator(t, s)
	b := data(12<<20+5, 45)
	d := commit(t, s, b)
	for _, size := range sizes {
		for _, n := range []int{100, 12<<20 + 5} {
			w := createBlob(t, bc, d, data(n, 46), size)
			if err := w.Commit(t.Context()); err != nil {
				t.Fatalf("Commit over a stored blob: %v", err)
			}
			wantBlob(t, s, d, b)
		}
	}
}

func testCreateConcurrent(t *testing.T, s blobstore.Store) {
	bc := creator(t, s)
	const n = 4
	b := data(11<<20, 47)
	d := sha256Of(b)
	ws := make([]blobstore.BlobWriter, n)
	for i := range ws {
		ws[i] = createBlob(t, bc, d, b, sizes[i%2])
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			<-start
			errs[i] = w.Commit(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Commit %d: %v", i, err)
		}
	}
	wantBlob(t, s, d, b)
}

func testCreateCancelledContext(t *testing.T, s blobstore.Store) {
	bc := creator(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := data(100, 48)
	d := sha256Of(b)
	if w, err := bc.CreateBlob(ctx, d, int64(len(b))); err == nil {
		w.Abort()
		t.Errorf("CreateBlob with a cancelled context succeeded")
	}
	for _, size := range sizes {
		w := createBlob(t, bc, d, b, size)
		if err := w.Commit(ctx); err == nil {
			t.Errorf("Commit with a cancelled context succeeded (size %s)", size)
		}
		w.Abort()
		wantNoBlob(t, s, d)
	}
	if _, err := bc.CreateBlob(t.Context(), "sha256:nothex", 1); err == nil {
		t.Errorf("CreateBlob of an invalid digest succeeded")
	}
}
