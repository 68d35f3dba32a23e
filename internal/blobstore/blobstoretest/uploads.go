package blobstoretest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/wharf/wharf/internal/blobstore"
)

func testMissingUpload(t *testing.T, s blobstore.Store) {
	// A caller that recorded no state has no upload.
	ctx, id := t.Context(), newID()
	wantNoUpload(t, s, id, nil)
	w, err := s.WriteUpload(ctx, id, 0, nil)
	if err == nil {
		w.Close()
	}
	if !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("WriteUpload error = %v; want ErrNotFound", err)
	}
	if err := s.CommitUpload(ctx, id, nil, sha256Of(nil), 0); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("CommitUpload error = %v; want ErrNotFound", err)
	}
	if err := s.CancelUpload(ctx, id, nil); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("CancelUpload error = %v; want ErrNotFound", err)
	}
	wantNoBlob(t, s, sha256Of(nil))
}

func testRetryWrite(t *testing.T, s blobstore.Store) {
	b := data(3000, 6)
	id, at1000 := upload(t, s, b[:1000])
	// A chunk that failed half-way left 1500 wrong bytes behind (and its
	// caller may even have been told of a state it did not record).
	junk := data(1500, 7)
	write(t, s, id, 1000, at1000, junk)
	// The retry starts again at 1000, from the state recorded there, with
	// a shorter chunk: the wrong bytes past it must go, not linger.
	st := write(t, s, id, 1000, at1000, b[1000:2000])
	st = wantUpload(t, s, id, st, b[:2000])
	st = write(t, s, id, 2000, st, b[2000:])
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

// testRetryAcrossParts retries from a recorded state after a failed chunk
// that had sent whole parts (at 5 MiB) and left a tail.
func testRetryAcrossParts(t *testing.T, s blobstore.Store) {
	const mib = 1 << 20
	b := data(12*mib+5, 16)
	id, st := startUpload(t, s)
	at6 := write(t, s, id, 0, st, b[:6*mib+1])
	write(t, s, id, 6*mib+1, at6, data(5*mib, 17))
	st = write(t, s, id, 6*mib+1, at6, b[6*mib+1:9*mib])
	st = write(t, s, id, 9*mib, st, b[9*mib:])
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

func testWriteBeyondSize(t *testing.T, s blobstore.Store) {
	id, st := upload(t, s, []byte("0123456789"))
	// Either WriteUpload or Close must refuse: a gap would corrupt the blob.
	w, err := s.WriteUpload(t.Context(), id, 11, st)
	if err == nil {
		_, _ = w.Write([]byte("x"))
		err = w.Close()
	}
	if err == nil {
		t.Fatal("writing at offset 11 of a 10-byte upload succeeded; want an error")
	}
	wantUpload(t, s, id, st, []byte("0123456789"))
}

func testUploadInvisible(t *testing.T, s blobstore.Store) {
	b := data(1000, 8)
	d := sha256Of(b)
	id, st := upload(t, s, b)
	wantNoBlob(t, s, d)
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

func testCommitWrongSize(t *testing.T, s blobstore.Store) {
	b := data(1000, 9)
	d := sha256Of(b)
	id, st := upload(t, s, b)
	for _, size := range []int64{999, 1001, 0, -1} {
		if err := s.CommitUpload(t.Context(), id, st, d, size); err == nil {
			t.Errorf("CommitUpload(size %d) of a 1000-byte upload succeeded; want an error", size)
		}
		wantNoBlob(t, s, d)
	}
}

func testCommitRemovesUpload(t *testing.T, s blobstore.Store) {
	b := data(100, 10)
	id, st := upload(t, s, b)
	if err := s.CommitUpload(t.Context(), id, st, sha256Of(b), int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantNoUpload(t, s, id, st)
}

func testCommitDedup(t *testing.T, s blobstore.Store) {
	b := data(2000, 11)
	d := sha256Of(b)
	type up struct {
		id string
		st blobstore.State
	}
	var ups []up
	for range 2 {
		id, st := upload(t, s, b)
		ups = append(ups, up{id, st})
	}
	for _, u := range ups {
		if err := s.CommitUpload(t.Context(), u.id, u.st, d, int64(len(b))); err != nil {
			t.Fatalf("CommitUpload(%q): %v", u.id, err)
		}
		wantNoUpload(t, s, u.id, u.st)
		wantBlob(t, s, d, b)
	}
}

func testCommitConcurrent(t *testing.T, s blobstore.Store) {
	const n = 8
	b := data(256<<10, 12)
	d := sha256Of(b)
	ids := make([]string, n)
	states := make([]blobstore.State, n)
	for i := range ids {
		ids[i], states[i] = upload(t, s, b)
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			<-start
			errs[i] = s.CommitUpload(t.Context(), id, states[i], d, int64(len(b)))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("CommitUpload(%q): %v", ids[i], err)
		}
		wantNoUpload(t, s, ids[i], states[i])
	}
	wantBlob(t, s, d, b)
}

func testCancel(t *testing.T, s blobstore.Store) {
	b := data(100, 13)
	id, st := upload(t, s, b)
	if err := s.CancelUpload(t.Context(), id, st); err != nil {
		t.Fatalf("CancelUpload: %v", err)
	}
	wantNoUpload(t, s, id, st)
	wantNoBlob(t, s, sha256Of(b))
	// The caller dropped its state with the session.
	if err := s.CancelUpload(t.Context(), id, nil); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("second CancelUpload error = %v; want ErrNotFound", err)
	}
	// The id is free again.
	if _, err := s.StartUpload(t.Context(), id); err != nil {
		t.Errorf("StartUpload after cancel: %v", err)
	}
}

func testReadUpload(t *testing.T, s blobstore.Store) {
	b := data(5000, 15)
	id, st := startUpload(t, s)
	st = wantUpload(t, s, id, st, nil)
	st = write(t, s, id, 0, st, b[:1234])
	st = wantUpload(t, s, id, st, b[:1234])
	st = write(t, s, id, 1234, st, b[1234:])
	st = wantUpload(t, s, id, st, b)
	// Read back, the upload can still be committed (S3 completed its
	// multipart upload to read it: the recorded state says so).
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload after ReadUpload: %v", err)
	}
	wantBlob(t, s, d, b)
}

// invalidIDs could escape the upload area or are not plain names.
var invalidIDs = []string{
	"", ".", "..", "../x", "../../x", "a/b", "/abs", `a\b`, `..\x`,
	"a b", "x\x00y", "é", "a:b", strings.Repeat("a", 129),
}

func testInvalidIDs(t *testing.T, s blobstore.Store) {
	ctx, b := t.Context(), []byte("x")
	// A state that is valid for some upload, so that only the id is wrong.
	_, st := upload(t, s, b)
	for _, id := range invalidIDs {
		_, err := s.StartUpload(ctx, id)
		wantInvalid(t, "StartUpload("+id+")", err)
		w, err := s.WriteUpload(ctx, id, 1, st)
		if err == nil {
			w.Close()
		}
		wantInvalid(t, "WriteUpload("+id+")", err)
		r, _, err := s.ReadUpload(ctx, id, st)
		if err == nil {
			r.Close()
		}
		wantInvalid(t, "ReadUpload("+id+")", err)
		wantInvalid(t, "CommitUpload("+id+")", s.CommitUpload(ctx, id, st, sha256Of(b), 1))
		wantInvalid(t, "CancelUpload("+id+")", s.CancelUpload(ctx, id, st))
	}
	wantNoBlob(t, s, sha256Of(b))
}

func testValidIDs(t *testing.T, s blobstore.Store) {
	for _, id := range []string{
		"a", "Z", "0", "-", "_", "A-z_09",
		"3f2b9c1e-7d4a-4e8b-9a6f-0c5d2e1b8a7f",
		strings.Repeat("x", 128),
	} {
		st, err := s.StartUpload(t.Context(), id)
		if err != nil {
			t.Errorf("StartUpload(%q): %v", id, err)
			continue
		}
		st = write(t, s, id, 0, st, []byte(id))
		st = wantUpload(t, s, id, st, []byte(id))
		if err := s.CancelUpload(t.Context(), id, st); err != nil {
			t.Errorf("CancelUpload(%q): %v", id, err)
		}
	}
}

func testCancelledContext(t *testing.T, s blobstore.Store) {
	b := data(100, 14)
	d := commit(t, s, b)
	id, st := upload(t, s, b)
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
	_, err = s.StartUpload(ctx, newID())
	wantCanceled(t, "StartUpload", err)
	w, err := s.WriteUpload(ctx, id, int64(len(b)), st)
	if err == nil {
		w.Close()
	}
	wantCanceled(t, "WriteUpload", err)
	ur, _, err := s.ReadUpload(ctx, id, st)
	if err == nil {
		ur.Close()
	}
	wantCanceled(t, "ReadUpload", err)
	wantCanceled(t, "CommitUpload", s.CommitUpload(ctx, id, st, sha512Of(b), int64(len(b))))
	wantCanceled(t, "CancelUpload", s.CancelUpload(ctx, id, st))
	wantCanceled(t, "Ping", s.Ping(ctx))

	// Nothing happened.
	wantBlob(t, s, d, b)
	wantUpload(t, s, id, st, b)
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
