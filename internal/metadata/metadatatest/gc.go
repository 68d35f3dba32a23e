package metadatatest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// RunCollector runs the contract of metadata.Collector's record of stored
// blobs (KeepBlob, UnusedBlobs, DeleteUnusedBlob, DeleteUnusedBlobRecords,
// BlobsInUse), on which garbage
// collection of a blob store that cannot be listed relies. newStore must
// return a new, empty store that is a metadata.Collector.
func RunCollector(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.Collector, metadata.Store)
	}{
		{"KeepBlobAndLinkBlob_RecordTheBlob", testRecordBlobs},
		{"UnusedBlobs_SparesRecentLinkedAndReferencedBlobs", testUnusedBlobsSpares},
		{"UnusedBlobs_LinkSinceDiscountsOlderLinks", testUnusedBlobsLinkSince},
		{"UnusedBlobs_PagesInDigestOrder", testUnusedBlobsPages},
		{"DeleteUnusedBlob_RechecksAndRemovesOnce", testDeleteUnusedBlob},
		{"DeleteUnusedBlob_RemoveErrorKeepsTheRecord", testDeleteUnusedBlobRemoveFails},
		{"DeleteUnusedBlob_ConcurrentCollectionsRemoveOnce", testDeleteUnusedBlobConcurrent},
		{"DeleteUnusedBlobRecords_DeletesOnlyUnusedRecords", testDeleteUnusedBlobRecords},
		{"BlobsInUse_AnswersForEachDigest", testBlobsInUse},
		{"PutSmallBlob_KeepsTheBytesLinksAndEndsTheUpload", testPutSmallBlob},
		{"MountSmallBlob_OnlyWhereTheRecordHoldsBytes", testMountSmallBlob},
		{"LinkedBlob_SaysWhetherTheRecordHoldsTheBytes", testLinkedBlob},
		{"CollectSmallBlobs_DeletesOnlyUnusedRecordsWithBytes", testCollectSmallBlobs},
		{"CollectSmallBlobs_ConcurrentWithMountsLosesNoMountedBytes", testCollectSmallBlobsRacesMounts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			c, ok := s.(metadata.Collector)
			if !ok {
				t.Fatalf("%T is not a metadata.Collector", s)
			}
			tc.test(t, c, s)
		})
	}
}

// later is a cutoff after everything a test records.
func later() time.Time { return time.Now().Add(time.Hour) }

func wantUnused(t *testing.T, c metadata.Collector, before, linkSince time.Time, want ...metadata.UnusedBlob) {
	t.Helper()
	got, err := c.UnusedBlobs(t.Context(), before, linkSince, "", 0)
	if err == nil && len(got) == 0 {
		got = nil
	}
	slices.SortFunc(want, func(a, b metadata.UnusedBlob) int { return compareDigests(a.Digest, b.Digest) })
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("UnusedBlobs = %v, %v; want %v", got, err, want)
	}
}

func compareDigests(a, b digest.Digest) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func keep(t *testing.T, c metadata.Collector, d digest.Digest, size int64) {
	t.Helper()
	if err := c.KeepBlob(t.Context(), d, size); err != nil {
		t.Fatalf("KeepBlob(%s): %v", d, err)
	}
}

func testRecordBlobs(t *testing.T, c metadata.Collector, s metadata.Store) {
	kept, linked := blobDigest("kept"), blobDigest("linked")
	keep(t, c, kept, 10)
	linkBlob(t, s, "app", linked, 20)
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: kept, Size: 10})
	if err := s.UnlinkBlob(t.Context(), "app", linked); err != nil {
		t.Fatal(err)
	}
	// The record outlives the link: the bytes are still stored.
	wantUnused(t, c, later(), time.Time{},
		metadata.UnusedBlob{Digest: kept, Size: 10}, metadata.UnusedBlob{Digest: linked, Size: 20})
	// Keeping again is idempotent.
	keep(t, c, kept, 10)
	wantUnused(t, c, later(), time.Time{},
		metadata.UnusedBlob{Digest: kept, Size: 10}, metadata.UnusedBlob{Digest: linked, Size: 20})
}

func testUnusedBlobsSpares(t *testing.T, c metadata.Collector, s metadata.Store) {
	ctx := t.Context()
	m := newManifest("app", "0")
	for _, d := range m.Blobs {
		linkBlob(t, s, "app", d, 5)
	}
	putManifest(t, s, m)
	loose := blobDigest("loose")
	keep(t, c, loose, 7)
	// Used after the cutoff: kept, whatever references it.
	wantUnused(t, c, time.Now().Add(-time.Minute), time.Time{})
	// Referenced by a manifest, its links gone: still kept.
	for _, d := range m.Blobs {
		if err := s.UnlinkBlob(ctx, "app", d); err != nil {
			t.Fatal(err)
		}
	}
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: loose, Size: 7})
	if err := s.DeleteManifest(ctx, "app", m.Digest); err != nil {
		t.Fatal(err)
	}
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: loose, Size: 7},
		metadata.UnusedBlob{Digest: m.Blobs[0], Size: 5}, metadata.UnusedBlob{Digest: m.Blobs[1], Size: 5})
	// Dating it again spares it from an earlier cutoff.
	cutoff := time.Now()
	keep(t, c, loose, 7)
	got, err := c.UnusedBlobs(ctx, cutoff, time.Time{}, "", 0)
	if err != nil || slices.ContainsFunc(got, func(b metadata.UnusedBlob) bool { return b.Digest == loose }) {
		t.Errorf("UnusedBlobs before a blob was kept again = %v, %v; want it spared", got, err)
	}
}

func testUnusedBlobsLinkSince(t *testing.T, c metadata.Collector, s metadata.Store) {
	d := blobDigest("linked")
	linkBlob(t, s, "app", d, 3)
	// A dry run counts the blobs whose links pruning would remove: links
	// made before linkSince do not count.
	wantUnused(t, c, later(), later(), metadata.UnusedBlob{Digest: d, Size: 3})
	wantUnused(t, c, later(), time.Now().Add(-time.Hour))
	wantUnused(t, c, later(), time.Time{})
}

func testUnusedBlobsPages(t *testing.T, c metadata.Collector, _ metadata.Store) {
	var want []digest.Digest
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		d := blobDigest(name)
		keep(t, c, d, 1)
		want = append(want, d)
	}
	slices.SortFunc(want, compareDigests)
	var got []digest.Digest
	var after digest.Digest
	for range 4 {
		page, err := c.UnusedBlobs(t.Context(), later(), time.Time{}, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page {
			got = append(got, b.Digest)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Digest
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages = %v; want %v", got, want)
	}
}

func testDeleteUnusedBlob(t *testing.T, c metadata.Collector, s metadata.Store) {
	ctx := t.Context()
	d := blobDigest("x")
	keep(t, c, d, 4)
	removes := 0
	remove := func(ctx context.Context) error { removes++; return nil }
	// Listed, then linked by a push before its deletion: kept.
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: d, Size: 4})
	linkBlob(t, s, "app", d, 4)
	if ok, err := c.DeleteUnusedBlob(ctx, d, later(), remove); err != nil || ok || removes != 0 {
		t.Fatalf("DeleteUnusedBlob of a linked blob = %v, %v (%d removes); want kept, bytes untouched", ok, err, removes)
	}
	if err := s.UnlinkBlob(ctx, "app", d); err != nil {
		t.Fatal(err)
	}
	// Used after the cutoff: kept.
	if ok, err := c.DeleteUnusedBlob(ctx, d, time.Now().Add(-time.Minute), remove); err != nil || ok || removes != 0 {
		t.Fatalf("DeleteUnusedBlob of a recent blob = %v, %v (%d removes); want kept", ok, err, removes)
	}
	if ok, err := c.DeleteUnusedBlob(ctx, d, later(), remove); err != nil || !ok || removes != 1 {
		t.Fatalf("DeleteUnusedBlob = %v, %v (%d removes); want deleted, bytes removed once", ok, err, removes)
	}
	wantUnused(t, c, later(), time.Time{})
	if ok, err := c.DeleteUnusedBlob(ctx, d, later(), remove); err != nil || ok || removes != 1 {
		t.Fatalf("DeleteUnusedBlob again = %v, %v (%d removes); want nothing to do", ok, err, removes)
	}
	// A push after the collection records the blob again.
	keep(t, c, d, 4)
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: d, Size: 4})
}

func testDeleteUnusedBlobRemoveFails(t *testing.T, c metadata.Collector, _ metadata.Store) {
	d := blobDigest("x")
	keep(t, c, d, 4)
	boom := errors.New("bucket unreachable")
	ok, err := c.DeleteUnusedBlob(t.Context(), d, later(), func(context.Context) error { return boom })
	if !errors.Is(err, boom) || ok {
		t.Fatalf("DeleteUnusedBlob with a failing remove = %v, %v; want %v", ok, err, boom)
	}
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: d, Size: 4})
}

// Collections on several replicas may pick the same blob: its bytes are
// removed once, by the one that deletes its record.
func testDeleteUnusedBlobConcurrent(t *testing.T, c metadata.Collector, _ metadata.Store) {
	d := blobDigest("x")
	keep(t, c, d, 4)
	var removes, deleted atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			ok, err := c.DeleteUnusedBlob(t.Context(), d, later(), func(context.Context) error {
				removes.Add(1)
				return nil
			})
			if ok {
				deleted.Add(1)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	wantNoErrors(t, "DeleteUnusedBlob", errs)
	if removes.Load() != 1 || deleted.Load() != 1 {
		t.Errorf("%d removes, %d deletions; want 1 and 1", removes.Load(), deleted.Load())
	}
}

// One call deletes the records of every listed blob still unused, and
// none of a blob linked, referenced or used since the cutoff, nor of one
// it was not given.
func testDeleteUnusedBlobRecords(t *testing.T, c metadata.Collector, s metadata.Store) {
	ctx := t.Context()
	gone1, gone2, linked, other := blobDigest("gone1"), blobDigest("gone2"), blobDigest("linked"), blobDigest("other")
	for _, d := range []digest.Digest{gone1, gone2, other} {
		keep(t, c, d, 3)
	}
	m := linkedAndReferenced(t, s, linked)
	list := []digest.Digest{gone1, gone2, linked, m.Blobs[0], blobDigest("never recorded")}
	if n, err := c.DeleteUnusedBlobRecords(ctx, list, time.Now().Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("DeleteUnusedBlobRecords of blobs used after the cutoff = %d, %v; want 0", n, err)
	}
	if n, err := c.DeleteUnusedBlobRecords(ctx, list, later()); err != nil || n != 2 {
		t.Fatalf("DeleteUnusedBlobRecords = %d, %v; want 2 (the linked and the referenced stay)", n, err)
	}
	// The two it deleted are no longer listed; what it was not given is.
	wantUnused(t, c, later(), time.Time{}, metadata.UnusedBlob{Digest: other, Size: 3})
	if n, err := c.DeleteUnusedBlobRecords(ctx, nil, later()); err != nil || n != 0 {
		t.Fatalf("DeleteUnusedBlobRecords of nothing = %d, %v", n, err)
	}
}

// BlobsInUse names, among the digests it is given, those a manifest
// references or a link reaches (only links made since `before` unless it
// is zero), and no other.
func testBlobsInUse(t *testing.T, c metadata.Collector, s metadata.Store) {
	ctx := t.Context()
	linked, loose := blobDigest("linked"), blobDigest("loose")
	keep(t, c, loose, 3)
	m := linkedAndReferenced(t, s, linked)
	list := []digest.Digest{linked, loose, m.Blobs[0], m.Blobs[1], blobDigest("unknown")}
	want := func(before time.Time, in ...digest.Digest) {
		t.Helper()
		got, err := c.BlobsInUse(ctx, list, before)
		if err != nil {
			t.Fatal(err)
		}
		var names []digest.Digest
		for d, ok := range got {
			if ok {
				names = append(names, d)
			}
		}
		slices.SortFunc(names, compareDigests)
		slices.SortFunc(in, compareDigests)
		if !slices.Equal(names, in) {
			t.Errorf("BlobsInUse(before %v) = %v; want %v", before, names, in)
		}
	}
	want(time.Time{}, linked, m.Blobs[0], m.Blobs[1])
	want(time.Now().Add(-time.Minute), linked, m.Blobs[0], m.Blobs[1])
	// A link older than `before` no longer counts; a reference does.
	want(later(), m.Blobs[0], m.Blobs[1])
	if got, err := c.BlobsInUse(ctx, nil, time.Time{}); err != nil || len(got) != 0 {
		t.Errorf("BlobsInUse of nothing = %v, %v", got, err)
	}
}

// linkedAndReferenced links d in repository app, and pushes a manifest
// there whose blobs, their links gone, only its references hold.
func linkedAndReferenced(t *testing.T, s metadata.Store, d digest.Digest) *metadata.Manifest {
	t.Helper()
	linkBlob(t, s, "app", d, 4)
	m := newManifest("app", "0")
	for _, b := range m.Blobs {
		linkBlob(t, s, "app", b, 5)
	}
	putManifest(t, s, m)
	for _, b := range m.Blobs {
		if err := s.UnlinkBlob(t.Context(), "app", b); err != nil {
			t.Fatal(err)
		}
	}
	return m
}
