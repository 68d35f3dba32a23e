package blobstoretest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/wharf/wharf/internal/blobstore"
)

func testStartExisting(t *testing.T, s blobstore.Store) {
	id := upload(t, s, []byte("kept"))
	if err := s.StartUpload(t.Context(), id); err == nil {
		t.Fatalf("second StartUpload(%q) succeeded; want an error", id)
	}
	wantUpload(t, s, id, []byte("kept"))
}

func testMissingUpload(t *testing.T, s blobstore.Store) {
	ctx, id := t.Context(), newID()
	wantNoUpload(t, s, id)
	w, err := s.WriteUpload(ctx, id, 0)
	if err == nil {
		w.Close()
	}
	if !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("WriteUpload error = %v; want ErrNotFound", err)
	}
	if err := s.CommitUpload(ctx, id, sha256Of(nil), 0); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("CommitUpload error = %v; want ErrNotFound", err)
	}
	if err := s.CancelUpload(ctx, id); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("CancelUpload error = %v; want ErrNotFound", err)
	}
	wantNoBlob(t, s, sha256Of(nil))
}

func testRetryWrite(t *testing.T, s blobstore.Store) {
	b := data(3000, 6)
	id := upload(t, s, b[:1000])
	// A chunk that failed half-way left 1500 wrong bytes behind.
	junk := data(1500, 7)
	write(t, s, id, 1000, junk)
	wantUpload(t, s, id, append(b[:1000:1000], junk...))
	// The retry starts again at 1000 with a shorter chunk: the wrong bytes
	// past it must go, not linger at the end.
	write(t, s, id, 1000, b[1000:2000])
	wantUpload(t, s, id, b[:2000])
	write(t, s, id, 2000, b[2000:])
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

func testWriteBeyondSize(t *testing.T, s blobstore.Store) {
	id := upload(t, s, []byte("0123456789"))
	// Either WriteUpload or Close must refuse: a gap would corrupt the blob.
	w, err := s.WriteUpload(t.Context(), id, 11)
	if err == nil {
		_, _ = w.Write([]byte("x"))
		err = w.Close()
	}
	if err == nil {
		t.Fatal("writing at offset 11 of a 10-byte upload succeeded; want an error")
	}
	wantUpload(t, s, id, []byte("0123456789"))
}

func testUploadInvisible(t *testing.T, s blobstore.Store) {
	b := data(1000, 8)
	d := sha256Of(b)
	id := upload(t, s, b)
	wantNoBlob(t, s, d)
	if err := s.CommitUpload(t.Context(), id, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

func testCommitWrongSize(t *testing.T, s blobstore.Store) {
	b := data(1000, 9)
	d := sha256Of(b)
	id := upload(t, s, b)
	for _, size := range []int64{999, 1001, 0, -1} {
		if err := s.CommitUpload(t.Context(), id, d, size); err == nil {
			t.Errorf("CommitUpload(size %d) of a 1000-byte upload succeeded; want an error", size)
		}
		wantNoBlob(t, s, d)
	}
}

func testCommitRemovesUpload(t *testing.T, s blobstore.Store) {
	b := data(100, 10)
	id := upload(t, s, b)
	if err := s.CommitUpload(t.Context(), id, sha256Of(b), int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantNoUpload(t, s, id)
}

func testCommitDedup(t *testing.T, s blobstore.Store) {
	b := data(2000, 11)
	d := sha256Of(b)
	first, second := upload(t, s, b), upload(t, s, b)
	for _, id := range []string{first, second} {
		if err := s.CommitUpload(t.Context(), id, d, int64(len(b))); err != nil {
			t.Fatalf("CommitUpload(%q): %v", id, err)
		}
		wantNoUpload(t, s, id)
		wantBlob(t, s, d, b)
	}
}

func testCommitConcurrent(t *testing.T, s blobstore.Store) {
	const n = 8
	b := data(256<<10, 12)
	d := sha256Of(b)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = upload(t, s, b)
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			<-start
			errs[i] = s.CommitUpload(t.Context(), id, d, int64(len(b)))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("CommitUpload(%q): %v", ids[i], err)
		}
		wantNoUpload(t, s, ids[i])
	}
	wantBlob(t, s, d, b)
}

func testCancel(t *testing.T, s blobstore.Store) {
	b := data(100, 13)
	id := upload(t, s, b)
	if err := s.CancelUpload(t.Context(), id); err != nil {
		t.Fatalf("CancelUpload: %v", err)
	}
	wantNoUpload(t, s, id)
	wantNoBlob(t, s, sha256Of(b))
	if err := s.CancelUpload(t.Context(), id); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("second CancelUpload error = %v; want ErrNotFound", err)
	}
	// The id is free again.
	if err := s.StartUpload(t.Context(), id); err != nil {
		t.Errorf("StartUpload after cancel: %v", err)
	}
}

func testReadUpload(t *testing.T, s blobstore.Store) {
	b := data(5000, 15)
	id := startUpload(t, s)
	wantUpload(t, s, id, nil)
	write(t, s, id, 0, b[:1234])
	wantUpload(t, s, id, b[:1234])
	write(t, s, id, 1234, b[1234:])
	wantUpload(t, s, id, b)
}

// invalidIDs could escape the upload area or are not plain names.
var invalidIDs = []string{
	"", ".", "..", "../x", "../../x", "a/b", "/abs", `a\b`, `..\x`,
	"a b", "x\x00y", "é", "a:b", strings.Repeat("a", 129),
}

func testInvalidIDs(t *testing.T, s blobstore.Store) {
	ctx, b := t.Context(), []byte("x")
	for _, id := range invalidIDs {
		wantInvalid(t, "StartUpload("+id+")", s.StartUpload(ctx, id))
		w, err := s.WriteUpload(ctx, id, 0)
		if err == nil {
			w.Close()
		}
		wantInvalid(t, "WriteUpload("+id+")", err)
		_, err = s.UploadSize(ctx, id)
		wantInvalid(t, "UploadSize("+id+")", err)
		r, err := s.ReadUpload(ctx, id)
		if err == nil {
			r.Close()
		}
		wantInvalid(t, "ReadUpload("+id+")", err)
		wantInvalid(t, "CommitUpload("+id+")", s.CommitUpload(ctx, id, sha256Of(b), 1))
		wantInvalid(t, "CancelUpload("+id+")", s.CancelUpload(ctx, id))
	}
	wantNoBlob(t, s, sha256Of(b))
}

func testValidIDs(t *testing.T, s blobstore.Store) {
	for _, id := range []string{
		"a", "Z", "0", "-", "_", "A-z_09",
		"3f2b9c1e-7d4a-4e8b-9a6f-0c5d2e1b8a7f",
		strings.Repeat("x", 128),
	} {
		if err := s.StartUpload(t.Context(), id); err != nil {
			t.Errorf("StartUpload(%q): %v", id, err)
			continue
		}
		write(t, s, id, 0, []byte(id))
		wantUpload(t, s, id, []byte(id))
		if err := s.CancelUpload(t.Context(), id); err != nil {
			t.Errorf("CancelUpload(%q): %v", id, err)
		}
	}
}

func testCancelledContext(t *testing.T, s blobstore.Store) {
	b := data(100, 14)
	d := commit(t, s, b)
	id := upload(t, s, b)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := s.Stat(ctx, d)
	wantCanceled(t, "Stat", err)
	r, _, err := s.Open(ctx, d)
	if err == nil {
		r.Close()
	}
	wantCanceled(t, "Open", err)
	wantCanceled(t, "Delete", s.Delete(ctx, d))
	wantCanceled(t, "StartUpload", s.StartUpload(ctx, newID()))
	w, err := s.WriteUpload(ctx, id, 0)
	if err == nil {
		w.Close()
	}
	wantCanceled(t, "WriteUpload", err)
	_, err = s.UploadSize(ctx, id)
	wantCanceled(t, "UploadSize", err)
	ur, err := s.ReadUpload(ctx, id)
	if err == nil {
		ur.Close()
	}
	wantCanceled(t, "ReadUpload", err)
	wantCanceled(t, "CommitUpload", s.CommitUpload(ctx, id, sha512Of(b), int64(len(b))))
	wantCanceled(t, "CancelUpload", s.CancelUpload(ctx, id))
	wantCanceled(t, "Ping", s.Ping(ctx))

	// Nothing happened.
	wantBlob(t, s, d, b)
	wantUploadSize(t, s, id, int64(len(b)))
	wantNoBlob(t, s, sha512Of(b))
}

func wantCanceled(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a cancelled context: error = %v; want context.Canceled", call, err)
	}
}

func testPing(t *testing.T, s blobstore.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
