package s3

import (
	"testing"
)

// The PUT of a streamed blob is signed with the blob's digest as its
// payload hash, so S3 itself refuses bytes that do not hash to it: even a
// caller that committed them (the registry never does) leaves nothing at
// the blob's key.
func TestCreateBlob_StreamedPutRefusesBytesOfAnotherDigest(t *testing.T) {
	s, _ := newStore(t)
	b := data(3*testPart+7, 21)
	d := sha256Of(b)
	wrong := data(len(b), 22)
	w, err := s.CreateBlob(t.Context(), d, int64(len(wrong)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.(*streamWriter); !ok {
		t.Fatalf("CreateBlob of a sha256 blob of known size made a %T; want a *streamWriter", w)
	}
	if _, err := w.Write(wrong); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Commit(t.Context()); err == nil {
		t.Errorf("Commit of bytes that do not hash to %s succeeded", d)
	}
	if _, err := s.Stat(t.Context(), d); err == nil {
		t.Errorf("blob %s is visible after S3 refused its bytes", d)
	}
}
