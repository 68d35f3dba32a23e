package sqldb

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
)

// A manifest tagged between the listing and the delete is kept: the
// DELETE checks the condition again.
func TestDeleteUntaggedManifest_RechecksTheCondition(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	m := testManifest("app", "0")
	if err := db.PutManifest(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(time.Second)
	refs, err := db.UntaggedManifests(ctx, cutoff, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].Digest != m.Digest {
		t.Fatalf("untagged = %+v, want %s", refs, m.Digest)
	}
	if err := db.PutManifest(ctx, m, []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	deleted, err := db.DeleteUntaggedManifest(ctx, refs[0], cutoff)
	if err != nil || deleted {
		t.Fatalf("DeleteUntaggedManifest of a manifest tagged since = %v, %v; want kept", deleted, err)
	}
	if err := db.DeleteTag(ctx, "app", "latest"); err != nil {
		t.Fatal(err)
	}
	// The tag history holds it for a rollback while the delete is kept.
	if deleted, err := db.DeleteUntaggedManifest(ctx, refs[0], cutoff); err != nil || deleted {
		t.Fatalf("DeleteUntaggedManifest inside the tag history window = %v, %v; want kept", deleted, err)
	}
	if _, err := db.PruneTagHistory(ctx, time.Now().Add(metadata.DefaultTagHistory+time.Hour)); err != nil {
		t.Fatal(err)
	}
	if deleted, err := db.DeleteUntaggedManifest(ctx, refs[0], cutoff); err != nil || !deleted {
		t.Fatalf("DeleteUntaggedManifest once untagged = %v, %v; want deleted", deleted, err)
	}
	if refs, err := db.UntaggedManifests(ctx, cutoff, 10); err != nil || len(refs) != 0 {
		t.Fatalf("untagged after delete = %+v, %v", refs, err)
	}
}

// Grace: a manifest or link made after the cutoff is never a candidate.
func TestGC_GraceCutoff(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	m := testManifest("app", "0")
	for _, b := range m.Blobs {
		if err := db.LinkBlob(ctx, "app", b, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutManifest(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	if refs, err := db.UntaggedManifests(ctx, past, 10); err != nil || len(refs) != 0 {
		t.Fatalf("untagged before the cutoff = %+v, %v; want none", refs, err)
	}
	if n, err := db.PruneBlobLinks(ctx, time.Now().Add(time.Minute), true); err != nil || n != 0 {
		t.Fatalf("prunable links referenced by a manifest = %d, %v; want 0", n, err)
	}
	if !blobInUse(t, db, m.Blobs[0], time.Now().Add(time.Minute)) {
		t.Fatalf("referenced blob: reported unused")
	}
	if err := db.DeleteManifest(ctx, "app", m.Digest); err != nil {
		t.Fatal(err)
	}
	if !blobInUse(t, db, m.Blobs[0], past) {
		t.Fatalf("blob linked after the cutoff: reported unused")
	}
	future := time.Now().Add(time.Minute)
	if blobInUse(t, db, m.Blobs[0], future) {
		t.Fatalf("unreferenced blob with old links: reported in use")
	}
	// A collection asks with a zero time: until pruned, any link keeps the
	// bytes (its manifest may have gone after pruning ran).
	if !blobInUse(t, db, m.Blobs[0], time.Time{}) {
		t.Fatalf("linked blob for a collection: reported unused")
	}
	if n, err := db.PruneBlobLinks(ctx, future, false); err != nil || n != 2 {
		t.Fatalf("pruned %d links, %v; want 2", n, err)
	}
	if blobInUse(t, db, m.Blobs[0], time.Time{}) {
		t.Fatalf("blob without links for a collection: reported in use")
	}
}

// Linking a blob again renews the link: a push that re-sends a layer its
// repository held long ago must not lose the link to pruning before its
// manifest arrives.
func TestLinkBlob_RenewsTheLink(t *testing.T) {
	ctx := t.Context()
	clock := clocktest.New()
	db, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "metadata.db"), nil, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := testManifest("app", "0").Blobs[0]
	if err := db.LinkBlob(ctx, "app", d, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	cutoff := clock.Now().Add(-time.Minute)
	if err := db.LinkBlob(ctx, "app", d, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneBlobLinks(ctx, cutoff, false); err != nil || n != 0 {
		t.Fatalf("pruned %d renewed links, %v; want 0", n, err)
	}
}

// A blob HEAD by a pusher renews the link it reads, so that pruning spares
// a layer the client skipped; a recent link is left as it is (no write),
// and a link pruned meanwhile is reported gone, never recreated.
func TestRenewBlobLink(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	d := testManifest("app", "0").Blobs[0]
	if err := db.LinkBlob(ctx, "app", d, 1); err != nil {
		t.Fatal(err)
	}
	linkedAt := func() int64 {
		t.Helper()
		var at int64
		if err := db.read.QueryRowContext(ctx, `SELECT created_at FROM repo_blobs WHERE digest = ?`, d.String()).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	// Made an hour ago, as by a push that never sent its manifest.
	hourAgo := time.Now().Add(-time.Hour).UnixNano()
	if _, err := db.write.ExecContext(ctx, `UPDATE repo_blobs SET created_at = ?`, hourAgo); err != nil {
		t.Fatal(err)
	}

	// Recent enough for the caller: untouched.
	if err := db.RenewBlobLink(ctx, "app", d, time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if at := linkedAt(); at != hourAgo {
		t.Fatalf("a recent link was renewed: created_at %d, want %d", at, hourAgo)
	}
	// Older than the caller allows: renewed, so pruning spares it.
	cutoff := time.Now().Add(-time.Minute)
	if err := db.RenewBlobLink(ctx, "app", d, cutoff); err != nil {
		t.Fatal(err)
	}
	if at := linkedAt(); at < cutoff.UnixNano() {
		t.Fatalf("link not renewed: created_at %d, want at least %d", at, cutoff.UnixNano())
	}
	if n, err := db.PruneBlobLinks(ctx, cutoff, false); err != nil || n != 0 {
		t.Fatalf("pruned %d renewed links, %v; want 0", n, err)
	}

	// Gone: not found, and not linked again.
	if err := db.UnlinkBlob(ctx, "app", d); err != nil {
		t.Fatal(err)
	}
	for _, since := range []time.Time{cutoff, time.Now().Add(time.Hour)} {
		if err := db.RenewBlobLink(ctx, "app", d, since); !errors.Is(err, metadata.ErrNotFound) {
			t.Errorf("RenewBlobLink of a missing link = %v, want ErrNotFound", err)
		}
	}
	if _, err := db.BlobSize(ctx, "app", d); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("BlobSize after renewing a missing link = %v, want ErrNotFound", err)
	}
}

// blobInUse asks BlobsInUse about d alone, among digests nothing uses.
func blobInUse(t *testing.T, db *DB, d digest.Digest, before time.Time) bool {
	t.Helper()
	other := digest.FromString("unused")
	used, err := db.BlobsInUse(t.Context(), []digest.Digest{other, d}, before)
	if err != nil || used[other] {
		t.Fatalf("BlobsInUse = %v, %v", used, err)
	}
	return used[d]
}
