package metadatatest

import (
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// RunUsage runs the contract of metadata.UsageStore: usage follows every
// write that links or unlinks blobs, and a namespace counts a blob once.
func RunUsage(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.UsageStore, metadata.Store)
	}{
		{"Usage_UnknownIsZero", testUsageUnknown},
		{"Usage_NamespaceCountsABlobOnce", testUsageNamespaceOnce},
		{"Usage_UnlinkAndDeleteRepositoryGiveBack", testUsageGiveBack},
		{"Usage_PruneGivesBack", testUsagePrune},
		{"RecountUsage_CorrectsNothingWhenKept", testUsageRecount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			us, ok := s.(metadata.UsageStore)
			if !ok {
				t.Fatalf("%T is not a metadata.UsageStore", s)
			}
			tc.test(t, us, s)
		})
	}
}

func wantUsage(t *testing.T, get func(*testing.T) (metadata.Usage, error), what string, blobs, bytes int64) {
	t.Helper()
	u, err := get(t)
	if err != nil {
		t.Fatalf("usage of %s: %v", what, err)
	}
	if u.Blobs != blobs || u.Bytes != bytes {
		t.Errorf("usage of %s = %d blobs, %d bytes; want %d blobs, %d bytes", what, u.Blobs, u.Bytes, blobs, bytes)
	}
}

func repoUsage(us metadata.UsageStore, repo string) func(*testing.T) (metadata.Usage, error) {
	return func(t *testing.T) (metadata.Usage, error) { return us.RepositoryUsage(t.Context(), repo) }
}

func nsUsage(us metadata.UsageStore, ns string) func(*testing.T) (metadata.Usage, error) {
	return func(t *testing.T) (metadata.Usage, error) { return us.NamespaceUsage(t.Context(), ns) }
}

func testUsageUnknown(t *testing.T, us metadata.UsageStore, _ metadata.Store) {
	wantUsage(t, repoUsage(us, "nobody/here"), "an unknown repository", 0, 0)
	wantUsage(t, nsUsage(us, "nobody"), "an unknown namespace", 0, 0)
}

func testUsageNamespaceOnce(t *testing.T, us metadata.UsageStore, s metadata.Store) {
	shared, own, other := blobDigest("shared"), blobDigest("own"), blobDigest("other")
	linkBlob(t, s, "alice/app", shared, 1000)
	linkBlob(t, s, "alice/app", shared, 1000) // linking again counts nothing
	linkBlob(t, s, "alice/tools/cli", shared, 1000)
	linkBlob(t, s, "alice/app", own, 10)
	linkBlob(t, s, "bob/app", shared, 1000)
	linkBlob(t, s, "alicex/app", other, 5) // a longer name is another namespace
	linkBlob(t, s, "top", other, 5)

	wantUsage(t, repoUsage(us, "alice/app"), "alice/app", 2, 1010)
	wantUsage(t, repoUsage(us, "alice/tools/cli"), "alice/tools/cli", 1, 1000)
	// The shared blob counts once in alice, and again in bob.
	wantUsage(t, nsUsage(us, "alice"), "namespace alice", 2, 1010)
	wantUsage(t, nsUsage(us, "bob"), "namespace bob", 1, 1000)
	wantUsage(t, nsUsage(us, "alicex"), "namespace alicex", 1, 5)
	// Single-segment repositories make up the namespace "".
	wantUsage(t, nsUsage(us, ""), "the top-level namespace", 1, 5)

	for _, c := range []struct {
		ns   string
		want bool
	}{{"alice", true}, {"bob", true}, {"alicex", false}, {"", false}, {"carol", false}} {
		if got, err := us.NamespaceHoldsBlob(t.Context(), c.ns, shared); err != nil || got != c.want {
			t.Errorf("NamespaceHoldsBlob(%q, shared) = %v, %v; want %v", c.ns, got, err, c.want)
		}
	}
}

func testUsageGiveBack(t *testing.T, us metadata.UsageStore, s metadata.Store) {
	shared, own := blobDigest("shared"), blobDigest("own")
	linkBlob(t, s, "alice/app", shared, 1000)
	linkBlob(t, s, "alice/web", shared, 1000)
	linkBlob(t, s, "alice/web", own, 10)

	if err := s.UnlinkBlob(t.Context(), "alice/app", shared); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, repoUsage(us, "alice/app"), "alice/app after its unlink", 0, 0)
	// alice/web still links the shared blob: the namespace keeps it.
	wantUsage(t, nsUsage(us, "alice"), "alice after one of two links went", 2, 1010)

	if err := s.DeleteRepository(t.Context(), "alice/web"); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, repoUsage(us, "alice/web"), "a deleted repository", 0, 0)
	wantUsage(t, nsUsage(us, "alice"), "alice after its last links went", 0, 0)

	// A repository of the same name starts from nothing.
	linkBlob(t, s, "alice/web", own, 10)
	wantUsage(t, repoUsage(us, "alice/web"), "alice/web made again", 1, 10)
	wantUsage(t, nsUsage(us, "alice"), "alice after a new link", 1, 10)
}

func testUsagePrune(t *testing.T, us metadata.UsageStore, s metadata.Store) {
	c, ok := s.(metadata.Collector)
	if !ok {
		t.Skipf("%T is not a metadata.Collector", s)
	}
	m := newManifest("alice/app", "kept")
	for _, d := range m.Blobs {
		linkBlob(t, s, "alice/app", d, 100)
	}
	putManifest(t, s, m, "v1")
	linkBlob(t, s, "alice/app", blobDigest("dangling"), 7)
	linkBlob(t, s, "alice/web", blobDigest("dangling"), 7)
	wantUsage(t, nsUsage(us, "alice"), "alice before pruning", 3, 207)

	if _, err := c.PruneBlobLinks(t.Context(), time.Now().Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, repoUsage(us, "alice/app"), "alice/app after pruning", 2, 200)
	wantUsage(t, repoUsage(us, "alice/web"), "alice/web after pruning", 0, 0)
	wantUsage(t, nsUsage(us, "alice"), "alice after pruning", 2, 200)
}

func testUsageRecount(t *testing.T, us metadata.UsageStore, s metadata.Store) {
	linkBlob(t, s, "alice/app", blobDigest("a"), 3)
	linkBlob(t, s, "alice/web", blobDigest("a"), 3)
	linkBlob(t, s, "bob/app", blobDigest("b"), 4)
	if err := s.UnlinkBlob(t.Context(), "alice/app", blobDigest("a")); err != nil {
		t.Fatal(err)
	}
	fixed, err := us.RecountUsage(t.Context())
	if err != nil || fixed != 0 {
		t.Fatalf("RecountUsage = %d, %v; want nothing to correct", fixed, err)
	}
	wantUsage(t, nsUsage(us, "alice"), "alice after a recount", 1, 3)
	wantUsage(t, nsUsage(us, "bob"), "bob after a recount", 1, 4)
}
