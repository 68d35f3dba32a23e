package metadatatest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

func testRepositoryExistsUnknown(t *testing.T, s metadata.Store) {
	wantRepoExists(t, s, "library/unknown", false)
}

func testRepositoryExistsWholeName(t *testing.T, s metadata.Store) {
	linkBlob(t, s, "a/b", blobDigest("x"), 1)
	wantRepoExists(t, s, "a/b", true)
	for _, other := range []string{"a", "a/", "a/b/c", "a/bc", "A/B"} {
		wantRepoExists(t, s, other, false)
	}
}

func testLinkBlobCreatesRepository(t *testing.T, s metadata.Store) {
	linkBlob(t, s, "library/ubuntu", blobDigest("layer"), 42)
	wantRepoExists(t, s, "library/ubuntu", true)
	wantRepos(t, s, "library/ubuntu")
}

func testPutManifestCreatesRepository(t *testing.T, s metadata.Store) {
	putManifest(t, s, newManifest("library/alpine", "m"))
	wantRepoExists(t, s, "library/alpine", true)
	wantRepos(t, s, "library/alpine")
	// A repository created by an untagged manifest has no tags, but exists.
	wantTags(t, s, "library/alpine")
}

func testListRepositoriesEmpty(t *testing.T, s metadata.Store) {
	for _, n := range []int{0, -1, 10} {
		got, err := s.ListRepositories(t.Context(), "", n)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("ListRepositories(\"\", %d) = %#v, %v; want an empty, non-nil list", n, got, err)
		}
	}
}

func testListRepositoriesByteOrder(t *testing.T, s metadata.Store) {
	// Byte order, not a locale's: punctuation sorts by its code point
	// ('-' < '.' < '/' < '0' < '_' < 'a').
	want := []string{"a-b", "a.b", "a/b", "a/b/c", "a0", "a_b", "ab", "b", "library/ubuntu"}
	for i, repo := range []string{"library/ubuntu", "ab", "a_b", "b", "a0", "a/b/c", "a/b", "a.b", "a-b"} {
		if i%2 == 0 {
			linkBlob(t, s, repo, blobDigest(repo), 1)
		} else {
			putManifest(t, s, newManifest(repo, repo))
		}
	}
	wantRepos(t, s, want...)
}

func testListRepositoriesPaginates(t *testing.T, s metadata.Store) {
	all := []string{"r/a", "r/b", "r/c", "r/d", "r/e"}
	for _, repo := range all {
		linkBlob(t, s, repo, blobDigest("x"), 1)
	}
	tests := []struct {
		last string
		n    int
		want []string
	}{
		{"", 0, all},
		{"", -1, all},
		{"", 2, all[:2]},
		{"", 5, all},
		{"", 6, all},
		{"r/b", 2, []string{"r/c", "r/d"}},
		{"r/d", 2, []string{"r/e"}},
		{"r/e", 2, []string{}},
		{"r/e", 0, []string{}},
		{"r/bb", 0, []string{"r/c", "r/d", "r/e"}}, // last need not exist
		{"r", 1, []string{"r/a"}},
		{"s", 0, []string{}},
	}
	for _, tt := range tests {
		got, err := s.ListRepositories(t.Context(), tt.last, tt.n)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ListRepositories(%q, %d) = %q, %v; want %q, nil", tt.last, tt.n, got, err, tt.want)
		}
	}
	// Following the pages from the start visits every repository once.
	var walked []string
	for last, pages := "", 0; ; pages++ {
		if pages > len(all) {
			t.Fatalf("pagination did not end after %d pages: %q", pages, walked)
		}
		page, err := s.ListRepositories(t.Context(), last, 2)
		if err != nil {
			t.Fatalf("ListRepositories(%q, 2): %v", last, err)
		}
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		last = page[len(page)-1]
	}
	if !slices.Equal(walked, all) {
		t.Errorf("pages of 2 = %q; want %q", walked, all)
	}
}

func testLinkBlobIdempotent(t *testing.T, s metadata.Store) {
	d := blobDigest("layer")
	for range 3 {
		linkBlob(t, s, "repo", d, 1234)
	}
	wantBlobSize(t, s, "repo", d, 1234)
	wantRepos(t, s, "repo")
	st, err := s.Stats(t.Context())
	if err != nil || st != (metadata.Stats{Blobs: 1, Bytes: 1234}) {
		t.Errorf("Stats = %+v, %v; want {Blobs:1 Bytes:1234}, nil", st, err)
	}
	// One unlink undoes any number of links.
	if err := s.UnlinkBlob(t.Context(), "repo", d); err != nil {
		t.Fatalf("UnlinkBlob: %v", err)
	}
	wantNoBlob(t, s, "repo", d)
}

func testBlobSizeScoped(t *testing.T, s metadata.Store) {
	d, e := blobDigest("a"), blobDigest("b")
	linkBlob(t, s, "repo/a", d, 10)
	linkBlob(t, s, "repo/b", e, 20)
	wantBlobSize(t, s, "repo/a", d, 10)
	wantBlobSize(t, s, "repo/b", e, 20)
	// A blob linked in one repository is not visible from another.
	wantNoBlob(t, s, "repo/b", d)
	wantNoBlob(t, s, "repo/a", e)
	wantNoBlob(t, s, "repo", d)
	wantNoBlob(t, s, "repo/a", blobDigest("never linked"))
}

func testBlobSizeUnknownRepo(t *testing.T, s metadata.Store) {
	d := blobDigest("a")
	linkBlob(t, s, "repo", d, 10)
	wantNoBlob(t, s, "other", d)
	wantRepoExists(t, s, "other", false)
}

func testAnyBlobSize(t *testing.T, s metadata.Store) {
	d := blobDigest("shared")
	_, err := s.AnyBlobSize(t.Context(), d)
	wantErr(t, "AnyBlobSize before any link", err, metadata.ErrNotFound)

	linkBlob(t, s, "repo/a", d, 77)
	linkBlob(t, s, "repo/b", d, 77)
	if got, err := s.AnyBlobSize(t.Context(), d); err != nil || got != 77 {
		t.Errorf("AnyBlobSize(%s) = %d, %v; want 77, nil", d, got, err)
	}
	if err := s.UnlinkBlob(t.Context(), "repo/a", d); err != nil {
		t.Fatalf("UnlinkBlob(repo/a): %v", err)
	}
	if got, err := s.AnyBlobSize(t.Context(), d); err != nil || got != 77 {
		t.Errorf("AnyBlobSize(%s) with one link left = %d, %v; want 77, nil", d, got, err)
	}
	if err := s.UnlinkBlob(t.Context(), "repo/b", d); err != nil {
		t.Fatalf("UnlinkBlob(repo/b): %v", err)
	}
	_, err = s.AnyBlobSize(t.Context(), d)
	wantErr(t, "AnyBlobSize after every link is removed", err, metadata.ErrNotFound)
}

func testBlobRepositories(t *testing.T, s metadata.Store) {
	d := blobDigest("shared")
	list := func(last string, n int) []string {
		t.Helper()
		got, err := s.BlobRepositories(t.Context(), d, last, n)
		if err != nil {
			t.Fatalf("BlobRepositories(%q, %d): %v", last, n, err)
		}
		return got
	}
	if got := list("", 0); len(got) != 0 {
		t.Errorf("BlobRepositories before any link = %v, want none", got)
	}
	for _, repo := range []string{"repo/c", "repo/a", "repo/b"} {
		linkBlob(t, s, repo, d, 5)
	}
	linkBlob(t, s, "other", blobDigest("another"), 5)
	if got := list("", 0); !slices.Equal(got, []string{"repo/a", "repo/b", "repo/c"}) {
		t.Errorf("BlobRepositories = %v, want repo/a repo/b repo/c", got)
	}
	if got := list("repo/a", 1); !slices.Equal(got, []string{"repo/b"}) {
		t.Errorf("BlobRepositories after repo/a, 1 = %v, want repo/b", got)
	}
	if err := s.UnlinkBlob(t.Context(), "repo/b", d); err != nil {
		t.Fatal(err)
	}
	if got := list("repo/a", 0); !slices.Equal(got, []string{"repo/c"}) {
		t.Errorf("BlobRepositories after unlinking repo/b = %v, want repo/c", got)
	}
}

func testUnlinkBlob(t *testing.T, s metadata.Store) {
	d, e := blobDigest("a"), blobDigest("b")
	linkBlob(t, s, "repo/a", d, 1)
	linkBlob(t, s, "repo/a", e, 2)
	linkBlob(t, s, "repo/b", d, 1)
	if err := s.UnlinkBlob(t.Context(), "repo/a", d); err != nil {
		t.Fatalf("UnlinkBlob(repo/a, %s): %v", d, err)
	}
	wantNoBlob(t, s, "repo/a", d)
	wantBlobSize(t, s, "repo/a", e, 2)
	wantBlobSize(t, s, "repo/b", d, 1)
	// The repository outlives its last link.
	if err := s.UnlinkBlob(t.Context(), "repo/a", e); err != nil {
		t.Fatalf("UnlinkBlob(repo/a, %s): %v", e, err)
	}
	wantRepoExists(t, s, "repo/a", true)
	wantRepos(t, s, "repo/a", "repo/b")
}

func testUnlinkBlobMissing(t *testing.T, s metadata.Store) {
	d := blobDigest("a")
	err := s.UnlinkBlob(t.Context(), "repo", d)
	wantErr(t, "UnlinkBlob in unknown repository", err, metadata.ErrNotFound)

	linkBlob(t, s, "repo", d, 1)
	err = s.UnlinkBlob(t.Context(), "repo", blobDigest("other"))
	wantErr(t, "UnlinkBlob of unlinked blob", err, metadata.ErrNotFound)
	err = s.UnlinkBlob(t.Context(), "elsewhere", d)
	wantErr(t, "UnlinkBlob from another repository", err, metadata.ErrNotFound)
	wantBlobSize(t, s, "repo", d, 1)

	if err := s.UnlinkBlob(t.Context(), "repo", d); err != nil {
		t.Fatalf("UnlinkBlob: %v", err)
	}
	err = s.UnlinkBlob(t.Context(), "repo", d)
	wantErr(t, "second UnlinkBlob", err, metadata.ErrNotFound)
}

func testMissingBlobs(t *testing.T, s metadata.Store) {
	a, b, c, d := blobDigest("a"), blobDigest("b"), blobDigest("c"), blobDigest("d")
	linkBlob(t, s, "repo", a, 1)
	linkBlob(t, s, "repo", c, 3)
	linkBlob(t, s, "other", b, 2)
	// A manifest referencing blobs does not link them.
	putManifest(t, s, &metadata.Manifest{
		Repo: "repo", Digest: digest.FromString("m"), MediaType: mediaTypeManifest,
		Content: []byte("m"), Blobs: []digest.Digest{d},
	})

	tests := []struct {
		repo string
		ds   []digest.Digest
		want []digest.Digest
	}{
		{"repo", nil, nil},
		{"repo", []digest.Digest{a, c}, nil},
		{"repo", []digest.Digest{a, b, c, d}, []digest.Digest{b, d}},
		{"repo", []digest.Digest{b}, []digest.Digest{b}},
		{"other", []digest.Digest{a, b, c}, []digest.Digest{a, c}},
		{"unknown", []digest.Digest{a, b}, []digest.Digest{a, b}},
	}
	for _, tt := range tests {
		got, err := s.MissingBlobs(t.Context(), tt.repo, tt.ds)
		if err != nil || !slices.Equal(sortedDigests(got), sortedDigests(tt.want)) {
			t.Errorf("MissingBlobs(%s, %v) = %v, %v; want %v, nil", tt.repo, tt.ds, got, err, tt.want)
		}
	}

	// Many digests in one call (an index or a manifest with many layers).
	var many, wantMissing []digest.Digest
	for i := range 1000 {
		d := blobDigest(fmt.Sprint("many ", i))
		many = append(many, d)
		if i%3 == 0 {
			linkBlob(t, s, "big", d, int64(i))
		} else {
			wantMissing = append(wantMissing, d)
		}
	}
	got, err := s.MissingBlobs(t.Context(), "big", many)
	if err != nil || !slices.Equal(sortedDigests(got), sortedDigests(wantMissing)) {
		t.Errorf("MissingBlobs(big, 1000 digests) = %d digests, %v; want %d, nil", len(got), err, len(wantMissing))
	}
}

func testStats(t *testing.T, s metadata.Store) {
	wantStats := func(want metadata.Stats) {
		t.Helper()
		got, err := s.Stats(t.Context())
		if err != nil || got != want {
			t.Errorf("Stats = %+v, %v; want %+v, nil", got, err, want)
		}
	}
	wantStats(metadata.Stats{})

	shared, own := blobDigest("shared"), blobDigest("own")
	for _, repo := range []string{"a", "b", "c"} {
		linkBlob(t, s, repo, shared, 100)
	}
	linkBlob(t, s, "b", own, 7)
	// Manifests are not blobs.
	putManifest(t, s, newManifest("a", "m"), "latest")
	wantStats(metadata.Stats{Blobs: 2, Bytes: 107})

	if err := s.UnlinkBlob(t.Context(), "a", shared); err != nil {
		t.Fatal(err)
	}
	wantStats(metadata.Stats{Blobs: 2, Bytes: 107})
	if err := s.UnlinkBlob(t.Context(), "b", own); err != nil {
		t.Fatal(err)
	}
	wantStats(metadata.Stats{Blobs: 1, Bytes: 100})

	// A repository's delete takes its links along; the blob stays counted
	// while another repository holds it.
	if err := s.DeleteRepository(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	wantStats(metadata.Stats{Blobs: 1, Bytes: 100})
	if err := s.DeleteRepository(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	wantStats(metadata.Stats{})
	linkBlob(t, s, "b", shared, 100)
	wantStats(metadata.Stats{Blobs: 1, Bytes: 100})
}
