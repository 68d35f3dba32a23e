package s3

import (
	"testing"

	"github.com/wharf/wharf/internal/blobstore"
)

// writeHinted opens a writer at the upload's size, hints hint bytes, and
// writes b in writes of odd sizes. It returns the open writer.
func writeHinted(t *testing.T, s *Store, id string, state []byte, hint int64, b []byte) *UploadWriter {
	t.Helper()
	size, err := s.UploadSize(t.Context(), id, state)
	if err != nil {
		t.Fatal(err)
	}
	bw, err := s.WriteUpload(t.Context(), id, size, state)
	if err != nil {
		t.Fatalf("WriteUpload at %d: %v", size, err)
	}
	w := bw.(*UploadWriter)
	w.WillWrite(hint)
	for len(b) > 0 {
		n := min(len(b), 777_777)
		if _, err := w.Write(b[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		b = b[n:]
	}
	return w
}

// wantPartsStored checks how many parts the store holds of the writer's
// multipart upload.
func wantPartsStored(t *testing.T, s *Store, w *UploadWriter, want int) {
	t.Helper()
	if w.st.MPU == "" {
		t.Fatal("no multipart upload was started")
	}
	res, err := s.core.ListObjectParts(t.Context(), s.cfg.Bucket, s.dataKey(w.id), w.st.MPU, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ObjectParts) != want {
		t.Errorf("store holds %d parts, want %d", len(res.ObjectParts), want)
	}
}

// commitAndWant commits the upload in state as the blob of b, and checks
// the blob and that the upload left nothing behind.
func commitAndWant(t *testing.T, s *Store, id string, state []byte, b []byte) {
	t.Helper()
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, state, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
	wantNoUploadObjects(t, s, id)
}

// A chunk whose length is known sends each part it will fill while the
// part's bytes are still arriving, and the parts make the blob.
func TestUpload_HintedChunkStreamsItsParts(t *testing.T) {
	s, _ := newStore(t)
	b := data(2*testPart+3<<20, 7)
	id := "hinted"
	st, _ := s.StartUpload(t.Context(), id)
	// The first chunk ends inside the second part: the first is sent as
	// it fills, the second waits for the next chunk as a tail.
	first := testPart + 1<<20
	w := writeHinted(t, s, id, st, int64(first), b[:testPart/2])
	if w.stream == nil {
		t.Fatal("half a part written of a chunk that fills it, and no part on its way")
	}
	if _, err := w.Write(b[testPart/2 : first]); err != nil {
		t.Fatal(err)
	}
	if w.stream != nil {
		t.Error("a part is on its way for bytes that will not fill it")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st = w.State()
	// The second chunk starts from the tail and fills the second part.
	w = writeHinted(t, s, id, st, int64(len(b)-first), b[first:first+1<<20])
	if w.stream == nil {
		t.Fatal("a chunk that fills the part it continues, and no part on its way")
	}
	if _, err := w.Write(b[first+1<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	commitAndWant(t, s, id, w.State(), b)
}

// A chunk that ends before the length it announced (the client went away)
// leaves no part of what was on its way: its bytes are the tail, and the
// upload goes on from there.
func TestUpload_HintedChunkCutShortStoresNoPart(t *testing.T) {
	s, _ := newStore(t)
	b := data(2*testPart+10, 8)
	id := "cut-short"
	st, _ := s.StartUpload(t.Context(), id)
	w := writeHinted(t, s, id, st, int64(len(b)), b[:testPart/2])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantPartsStored(t, s, w, 0)
	st = w.State()
	if n, _ := s.UploadSize(t.Context(), id, st); n != testPart/2 {
		t.Fatalf("upload holds %d bytes after the short chunk, want %d", n, testPart/2)
	}
	commitAndWant(t, s, id, writeChunk(t, s, id, st, b[testPart/2:]), b)
}

// A writer aborted while a part is on its way (its caller lost the
// session) stores nothing of that part.
func TestUpload_AbortStopsThePartOnItsWay(t *testing.T) {
	s, _ := newStore(t)
	id := "aborted-stream"
	st, _ := s.StartUpload(t.Context(), id)
	w := writeHinted(t, s, id, st, 2*testPart, data(testPart-1, 9))
	if w.stream == nil {
		t.Fatal("no part on its way")
	}
	blobstore.Aborter(w).Abort()
	wantPartsStored(t, s, w, 0)
}
