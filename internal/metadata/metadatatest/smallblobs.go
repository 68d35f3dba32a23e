package metadatatest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

func smallBlobs(t *testing.T, s metadata.Store) metadata.SmallBlobs {
	t.Helper()
	sb, ok := s.(metadata.SmallBlobs)
	if !ok {
		t.Fatalf("%T keeps no small blobs (metadata.SmallBlobs)", s)
	}
	return sb
}

func putSmall(t *testing.T, sb metadata.SmallBlobs, repo string, content []byte, end metadata.UploadEnd) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	if err := sb.PutSmallBlob(t.Context(), repo, d, content, end); err != nil {
		t.Fatalf("PutSmallBlob(%s, %s): %v", repo, d, err)
	}
	return d
}

func wantSmall(t *testing.T, sb metadata.SmallBlobs, d digest.Digest, want []byte) {
	t.Helper()
	got, err := sb.SmallBlob(t.Context(), d)
	if want == nil {
		wantErr(t, fmt.Sprintf("SmallBlob(%s)", d), err, metadata.ErrNotFound)
		return
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("SmallBlob(%s) = %q, %v; want %q", d, got, err, want)
	}
}

// The bytes, the link and the end of the session are one write: each
// kind of session ends as its own finish would end it.
func testPutSmallBlob(t *testing.T, c metadata.Collector, s metadata.Store) {
	sb := smallBlobs(t, s)
	// No session (a monolithic POST).
	a := putSmall(t, sb, "app", []byte("config a"), metadata.UploadEnd{})
	wantSmall(t, sb, a, []byte("config a"))
	wantBlobSize(t, s, "app", a, 8)
	// A recorded session loses its row.
	u := newUpload(t, "app")
	createUpload(t, s, u)
	b := putSmall(t, sb, "app", []byte("config b"), metadata.UploadEnd{ID: u.ID})
	wantNoUpload(t, s, "app", u.ID)
	wantSmall(t, sb, b, []byte("config b"))
	// A signed session is recorded as ended.
	if e, ok := s.(metadata.EndedUploads); ok {
		id := newUploadID()
		putSmall(t, sb, "app", []byte("config c"), metadata.UploadEnd{ID: id, Started: timeAt(-time.Minute)})
		wantEnded(t, e, "app", id, true)
	}
	// Pushed again, to another repository: linked there, bytes kept.
	putSmall(t, sb, "other", []byte("config a"), metadata.UploadEnd{})
	wantBlobSize(t, s, "other", a, 8)
	wantSmall(t, sb, a, []byte("config a"))
	// A blob the blob store holds has a record without bytes.
	stored := blobDigest("stored")
	linkBlob(t, s, "app", stored, 3)
	wantSmall(t, sb, stored, nil)
	wantSmall(t, sb, blobDigest("never"), nil)
	// A record with bytes is a record like the others to a collection.
	wantUnused(t, c, later(), time.Time{})
}

func testMountSmallBlob(t *testing.T, c metadata.Collector, s metadata.Store) {
	sb := smallBlobs(t, s)
	ctx := t.Context()
	d := putSmall(t, sb, "app", []byte("layer"), metadata.UploadEnd{})
	if ok, err := sb.MountSmallBlob(ctx, "dest", d); err != nil || !ok {
		t.Fatalf("MountSmallBlob(dest, %s) = %v, %v; want true", d, ok, err)
	}
	wantBlobSize(t, s, "dest", d, 5)
	// A record without bytes (the blob store holds them) and no record.
	stored := blobDigest("stored")
	keep(t, c, stored, 3)
	for _, d := range []digest.Digest{stored, blobDigest("never")} {
		if ok, err := sb.MountSmallBlob(ctx, "dest", d); err != nil || ok {
			t.Errorf("MountSmallBlob(dest, %s) = %v, %v; want false", d, ok, err)
		}
		wantNoBlob(t, s, "dest", d)
	}
}

func wantLinked(t *testing.T, sb metadata.SmallBlobs, repo string, d digest.Digest, want metadata.BlobInfo) {
	t.Helper()
	got, err := sb.LinkedBlob(t.Context(), repo, d)
	if err != nil || got != want {
		t.Errorf("LinkedBlob(%s, %s) = %+v, %v; want %+v", repo, d, got, err, want)
	}
	got, err = sb.AnyLinkedBlob(t.Context(), d)
	if err != nil || got != want {
		t.Errorf("AnyLinkedBlob(%s) = %+v, %v; want %+v", d, got, err, want)
	}
}

// Reads go straight to a blob's bytes: the link's lookup says where they
// are, and says it again after a commit changed it.
func testLinkedBlob(t *testing.T, _ metadata.Collector, s metadata.Store) {
	sb := smallBlobs(t, s)
	ctx := t.Context()
	a := putSmall(t, sb, "app", []byte("x"), metadata.UploadEnd{})
	wantLinked(t, sb, "app", a, metadata.BlobInfo{Size: 1, InRecord: true})
	empty := digest.FromBytes(nil)
	linkBlob(t, s, "app", empty, 0)
	wantLinked(t, sb, "app", empty, metadata.BlobInfo{Size: 0})
	// Stored as a file, then sent whole to another repository: its
	// record holds the bytes from then on, for every link.
	content := []byte("config stored twice")
	d := digest.FromBytes(content)
	linkBlob(t, s, "app", d, int64(len(content)))
	wantLinked(t, sb, "app", d, metadata.BlobInfo{Size: int64(len(content))})
	putSmall(t, sb, "other", content, metadata.UploadEnd{})
	wantLinked(t, sb, "app", d, metadata.BlobInfo{Size: int64(len(content)), InRecord: true})
	// No link is no answer, wherever the bytes are.
	_, err := sb.LinkedBlob(ctx, "nowhere", a)
	wantErr(t, "LinkedBlob(nowhere)", err, metadata.ErrNotFound)
	_, err = sb.AnyLinkedBlob(ctx, blobDigest("never"))
	wantErr(t, "AnyLinkedBlob(never)", err, metadata.ErrNotFound)
}

func collectSmall(t *testing.T, sb metadata.SmallBlobs, before time.Time, dryRun bool) []metadata.UnusedBlob {
	t.Helper()
	got, err := sb.CollectSmallBlobs(t.Context(), before, time.Time{}, "", 0, dryRun)
	if err != nil {
		t.Fatalf("CollectSmallBlobs(dry run %v): %v", dryRun, err)
	}
	return got
}

func testCollectSmallBlobs(t *testing.T, c metadata.Collector, s metadata.Store) {
	sb := smallBlobs(t, s)
	ctx := t.Context()
	linked := putSmall(t, sb, "app", []byte("linked"), metadata.UploadEnd{})
	unlinked := putSmall(t, sb, "app", []byte("unlinked"), metadata.UploadEnd{})
	referenced := putSmall(t, sb, "app", []byte("referenced"), metadata.UploadEnd{})
	m := newManifest("app", "refs")
	m.Blobs = []digest.Digest{referenced}
	putManifest(t, s, m)
	for _, d := range []digest.Digest{unlinked, referenced} {
		if err := s.UnlinkBlob(ctx, "app", d); err != nil {
			t.Fatal(err)
		}
	}
	// A record without bytes is the blob store's to collect.
	stored := blobDigest("stored")
	keep(t, c, stored, 3)
	// Nothing is older than a cutoff from before the pushes.
	if got := collectSmall(t, sb, time.Now().Add(-time.Hour), false); len(got) != 0 {
		t.Errorf("CollectSmallBlobs(an hour ago) = %v; want none", got)
	}
	want := []metadata.UnusedBlob{{Digest: unlinked, Size: int64(len("unlinked"))}}
	if got := collectSmall(t, sb, later(), true); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CollectSmallBlobs(dry run) = %v; want %v", got, want)
	}
	wantSmall(t, sb, unlinked, []byte("unlinked"))
	if got := collectSmall(t, sb, later(), false); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CollectSmallBlobs = %v; want %v", got, want)
	}
	wantSmall(t, sb, unlinked, nil)
	wantSmall(t, sb, linked, []byte("linked"))
	wantSmall(t, sb, referenced, []byte("referenced"))
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: stored, Size: 3})
	// Gone for good: a mount finds nothing, a push brings it back.
	if ok, err := sb.MountSmallBlob(ctx, "dest", unlinked); err != nil || ok {
		t.Errorf("MountSmallBlob of a collected blob = %v, %v; want false", ok, err)
	}
	putSmall(t, sb, "app", []byte("unlinked"), metadata.UploadEnd{})
	wantSmall(t, sb, unlinked, []byte("unlinked"))
}

// Collections race mounts of the same unlinked blobs: every mount that
// reports success leaves a link whose bytes are still there.
func testCollectSmallBlobsRacesMounts(t *testing.T, _ metadata.Collector, s metadata.Store) {
	sb := smallBlobs(t, s)
	ctx := t.Context()
	const n = 20
	ds := make([]digest.Digest, n)
	for i := range ds {
		ds[i] = putSmall(t, sb, "src", fmt.Appendf(nil, "blob %d", i), metadata.UploadEnd{})
		if err := s.UnlinkBlob(ctx, "src", ds[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	mounted := make([]bool, n)
	errs := make(chan error, n+2)
	for i, d := range ds {
		wg.Go(func() {
			ok, err := sb.MountSmallBlob(ctx, "dest", d)
			if err != nil {
				errs <- err
			}
			mounted[i] = ok
		})
	}
	for range 2 {
		wg.Go(func() {
			if _, err := sb.CollectSmallBlobs(ctx, later(), time.Time{}, "", 0, false); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, d := range ds {
		if !mounted[i] {
			wantSmall(t, sb, d, nil)
			continue
		}
		wantBlobSize(t, s, "dest", d, int64(len(fmt.Sprintf("blob %d", i))))
		wantSmall(t, sb, d, fmt.Appendf(nil, "blob %d", i))
	}
}
