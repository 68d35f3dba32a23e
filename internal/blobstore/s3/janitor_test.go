package s3

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/wharf/wharf/internal/blobstore"
)

// walkUploads lists the upload area through the store, as the janitor does.
func walkUploads(t *testing.T, s *Store) []blobstore.UploadObject {
	t.Helper()
	var out []blobstore.UploadObject
	if err := s.WalkUploadObjects(t.Context(), func(o blobstore.UploadObject) error {
		out = append(out, o)
		return nil
	}); err != nil {
		t.Fatalf("WalkUploadObjects: %v", err)
	}
	return out
}

// The walk finds an upload's multipart upload and tail under the prefix,
// and skips what is not an upload's object; the recorded state owns those
// two and not the tail of a writer whose state was never recorded, which
// RemoveUploadObject then removes, leaving an upload that still commits.
func TestWalkUploadObjects_OwnsWhatTheStateNames(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	id := "swept"
	// A directory marker and an object outside the prefix: not uploads.
	for _, key := range []string{s.cfg.Prefix + "uploads/", "uploads/" + id + "/data"} {
		if _, err := s.client.PutObject(ctx, s.cfg.Bucket, key, strings.NewReader(""), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s0, _ := s.StartUpload(ctx, id)
	b := data(testPart+100, 5)
	s1 := writeChunk(t, s, id, s0, b)
	_ = writeChunk(t, s, id, s1, []byte("a stale writer's tail"))

	objs := walkUploads(t, s)
	var owned, orphans []string
	for _, o := range objs {
		if o.Upload != id || o.Written.IsZero() {
			t.Errorf("walk found %+v; want objects of upload %s with their write times", o, id)
		}
		if s.Owns(o, s1) {
			owned = append(owned, o.Name)
		} else {
			orphans = append(orphans, o.Name)
			if err := s.RemoveUploadObject(ctx, o); err != nil {
				t.Fatalf("RemoveUploadObject(%s): %v", o.Name, err)
			}
		}
	}
	slices.Sort(owned)
	if len(owned) != 2 || !strings.HasPrefix(owned[0], multipartName) || !strings.HasPrefix(owned[1], "tail-"+strconv.Itoa(len(b))+"-") {
		t.Errorf("owned by the recorded state: %v; want its multipart upload and its tail", owned)
	}
	if len(orphans) != 1 || !strings.HasPrefix(orphans[0], "tail-") {
		t.Errorf("not owned: %v; want the stale writer's tail", orphans)
	}
	if got := walkUploads(t, s); len(got) != 2 {
		t.Errorf("after removing the orphan the walk finds %v; want the 2 owned", got)
	}
	// Gone already is no error.
	if len(orphans) == 1 {
		if err := s.RemoveUploadObject(ctx, blobstore.UploadObject{Upload: id, Name: orphans[0]}); err != nil {
			t.Errorf("removing an orphan twice: %v", err)
		}
	}
	d := sha256Of(b)
	if err := s.CommitUpload(ctx, id, s1, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload after the sweep: %v", err)
	}
	wantBlob(t, s, d, b)
}

// A CreateBlob writer that neither commits nor aborts (its replica died)
// leaves a multipart upload at the blob's key. The walk reports it as an
// upload that no session has, and removing it aborts it, so that the
// blob can be pushed again; a committed blob is never the janitor's.
func TestWalkUploadObjects_FindsDeadBlobWriters(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	b := data(testPart+100, 6)
	d := sha256Of(b)
	w, err := s.CreateBlob(ctx, d, -1) // unknown size: in parts
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil { // a whole part is sent
		t.Fatal(err)
	}
	kept := data(100, 7)
	committed := sha256Of(kept)
	id := "kept"
	st, _ := s.StartUpload(ctx, id)
	if err := s.CommitUpload(ctx, id, writeChunk(t, s, id, st, kept), committed, int64(len(kept))); err != nil {
		t.Fatal(err)
	}

	objs := walkUploads(t, s)
	if len(objs) != 1 || objs[0].Upload != blobUploadID(d) || !strings.HasPrefix(objs[0].Name, multipartName) || objs[0].Written.IsZero() {
		t.Fatalf("walk found %+v; want the dead writer's multipart upload, as upload %s", objs, blobUploadID(d))
	}
	if err := s.RemoveUploadObject(ctx, objs[0]); err != nil {
		t.Fatalf("RemoveUploadObject: %v", err)
	}
	if got := walkUploads(t, s); len(got) != 0 {
		t.Errorf("after the removal the walk finds %v; want nothing", got)
	}
	notMPU := blobstore.UploadObject{Upload: blobUploadID(committed), Name: "data"}
	if err := s.RemoveUploadObject(ctx, notMPU); err == nil {
		t.Errorf("RemoveUploadObject(%+v) succeeded; want it refused", notMPU)
	}
	wantBlob(t, s, committed, kept)
	w.Abort()
	w2, err := s.CreateBlob(ctx, d, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(ctx); err != nil {
		t.Fatalf("Commit after the sweep: %v", err)
	}
	wantBlob(t, s, d, b)
}
