package metadatatest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// RunCatalog runs the contract of the read-model methods behind the web
// UI and the Hub-style API (listing pages, descriptions, pull counts).
func RunCatalog(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.Store)
	}{
		{"ListRepositoryInfo_PagesWithTotal", testRepoInfoPages},
		{"ListRepositoryInfo_NamespaceAndSearch", testRepoInfoNamespaceSearch},
		{"ListRepositoryInfo_SortsByLastPushed", testRepoInfoSortPushed},
		{"ListRepositoryInfo_VisibleToNamespaces", testRepoInfoVisible},
		{"ListRepositoryInfo_RanksBySearchRelevance", testRepoInfoRelevance},
		{"GetRepositoryInfo_CountsTagsAndSize", testRepoInfoCounts},
		{"GetRepositoryInfo_MissingIsNotFound", testRepoInfoMissing},
		{"SetRepositoryDescription_RoundTrips", testRepoDescription},
		{"DeleteRepository_RemovesEverything", testDeleteRepository},
		{"ListTagInfo_FiltersSortsAndPages", testTagInfoPages},
		{"PutManifest_RecordsPushedBy", testTagPushedBy},
		{"AddPulls_CountsAndSkipsDeletedTags", testAddPulls},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newStore(t))
		})
	}
}

func listRepos(t *testing.T, s metadata.Store, q metadata.RepositoryQuery) ([]string, int) {
	t.Helper()
	infos, total, err := s.ListRepositoryInfo(t.Context(), q)
	if err != nil {
		t.Fatalf("ListRepositoryInfo(%+v): %v", q, err)
	}
	names := []string{}
	for _, i := range infos {
		names = append(names, i.Name)
	}
	return names, total
}

func testRepoInfoPages(t *testing.T, s metadata.Store) {
	for _, r := range []string{"a/c", "a/a", "b/x", "a/b"} {
		putManifest(t, s, newManifest(r, r), "latest")
	}
	names, total := listRepos(t, s, metadata.RepositoryQuery{Sort: metadata.SortByName, Offset: 1, Limit: 2})
	if want := []string{"a/b", "a/c"}; !slices.Equal(names, want) || total != 4 {
		t.Errorf("page = %q of %d, want %q of 4", names, total, want)
	}
}

func testRepoInfoNamespaceSearch(t *testing.T, s metadata.Store) {
	for _, r := range []string{"al/web", "alice/web", "alice/db", "bob/webapp"} {
		putManifest(t, s, newManifest(r, r), "v1")
	}
	if err := s.SetRepositoryDescription(t.Context(), "alice/db", "Postgres WEB console", ""); err != nil {
		t.Fatal(err)
	}
	names, total := listRepos(t, s, metadata.RepositoryQuery{Namespace: "alice", Sort: metadata.SortByName})
	if want := []string{"alice/db", "alice/web"}; !slices.Equal(names, want) || total != 2 {
		t.Errorf("namespace alice = %q (%d), want %q", names, total, want)
	}
	names, _ = listRepos(t, s, metadata.RepositoryQuery{Search: "Web", Sort: metadata.SortByName})
	if want := []string{"al/web", "alice/db", "alice/web", "bob/webapp"}; !slices.Equal(names, want) {
		t.Errorf("search web = %q, want %q (names and descriptions, any case)", names, want)
	}
}

func testRepoInfoSortPushed(t *testing.T, s metadata.Store) {
	for _, r := range []string{"x/old", "x/new", "x/mid"} {
		putManifest(t, s, newManifest(r, r), "v1")
		time.Sleep(2 * time.Millisecond) // pushed_at must differ
	}
	// A push to old makes it the newest.
	putManifest(t, s, newManifest("x/old", "again"), "v2")
	names, _ := listRepos(t, s, metadata.RepositoryQuery{Sort: metadata.SortByLastPushed})
	if want := []string{"x/old", "x/mid", "x/new"}; !slices.Equal(names, want) {
		t.Errorf("by last pushed = %q, want %q", names, want)
	}
}

func testRepoInfoVisible(t *testing.T, s metadata.Store) {
	for _, r := range []string{"alice/a", "bob/b", "org/c", "top"} {
		putManifest(t, s, newManifest(r, r), "v1")
	}
	q := metadata.RepositoryQuery{Sort: metadata.SortByName, Visible: &metadata.VisibleTo{Namespaces: []string{"alice", "org"}, Default: "private"}}
	names, total := listRepos(t, s, q)
	if want := []string{"alice/a", "org/c"}; !slices.Equal(names, want) || total != 2 {
		t.Errorf("visible = %q (%d), want %q", names, total, want)
	}
	q.Visible = &metadata.VisibleTo{Default: "public"}
	if names, _ := listRepos(t, s, q); len(names) != 4 {
		t.Errorf("with public default = %q, want all four", names)
	}
}

func testRepoInfoRelevance(t *testing.T, s metadata.Store) {
	for _, r := range []string{"a/mygallery", "b/gallery-tools", "c/other", "gallery", "z/gallery", "y/gallery", "d/docs"} {
		putManifest(t, s, newManifest(r, r), "v1")
	}
	if err := s.SetRepositoryDescription(t.Context(), "d/docs", "The GALLERY docs", ""); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	if err := s.AddPulls(t.Context(), []metadata.Pull{{Repo: "z/gallery", Tag: "v1", Count: 5, At: at}}); err != nil {
		t.Fatal(err)
	}
	q := metadata.RepositoryQuery{Search: "Gallery", Sort: metadata.SortByRelevance}
	names, total := listRepos(t, s, q)
	// Exact last component (the most pulled first, then by name), a
	// component starting with the term, the term inside a name, then the
	// description.
	want := []string{"z/gallery", "gallery", "y/gallery", "b/gallery-tools", "a/mygallery", "d/docs"}
	if !slices.Equal(names, want) || total != 6 {
		t.Errorf("relevance = %q (%d), want %q", names, total, want)
	}
	q.Offset, q.Limit = 2, 2
	if names, _ := listRepos(t, s, q); !slices.Equal(names, want[2:4]) {
		t.Errorf("relevance page 2 = %q, want %q", names, want[2:4])
	}
}

func testRepoInfoCounts(t *testing.T, s metadata.Store) {
	m := newManifest("a/b", "one")
	for _, d := range m.Blobs {
		if err := s.LinkBlob(t.Context(), "a/b", d, 10); err != nil {
			t.Fatal(err)
		}
	}
	putManifest(t, s, m, "v1", "latest")
	info, err := s.GetRepositoryInfo(t.Context(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if info.TagCount != 2 || info.StorageSize != 20 || info.LastPushed.IsZero() || info.Name != "a/b" {
		t.Errorf("info = %+v, want 2 tags, 20 bytes, a last push", info)
	}
}

func testRepoInfoMissing(t *testing.T, s metadata.Store) {
	if _, err := s.GetRepositoryInfo(t.Context(), "no/such"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("GetRepositoryInfo(missing) = %v, want ErrNotFound", err)
	}
	if err := s.SetRepositoryDescription(t.Context(), "no/such", "d", ""); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("SetRepositoryDescription(missing) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteRepository(t.Context(), "no/such"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("DeleteRepository(missing) = %v, want ErrNotFound", err)
	}
}

func testRepoDescription(t *testing.T, s metadata.Store) {
	putManifest(t, s, newManifest("a/b", "one"), "v1")
	for _, want := range [][2]string{{"first", "# One"}, {"second", "# Two"}} {
		if err := s.SetRepositoryDescription(t.Context(), "a/b", want[0], want[1]); err != nil {
			t.Fatal(err)
		}
		info, err := s.GetRepositoryInfo(t.Context(), "a/b")
		if err != nil {
			t.Fatal(err)
		}
		if info.Description != want[0] || info.Readme != want[1] {
			t.Errorf("description, readme = %q, %q; want %q", info.Description, info.Readme, want)
		}
	}
}

func testDeleteRepository(t *testing.T, s metadata.Store) {
	m := newManifest("a/b", "one")
	putManifest(t, s, m, "v1")
	putManifest(t, s, newManifest("a/c", "two"), "v1")
	if err := s.DeleteRepository(t.Context(), "a/b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.RepositoryExists(t.Context(), "a/b"); ok {
		t.Error("repository still exists")
	}
	if _, err := s.GetManifest(t.Context(), "a/b", m.Digest); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("manifest after delete: %v, want ErrNotFound", err)
	}
	if ok, _ := s.RepositoryExists(t.Context(), "a/c"); !ok {
		t.Error("another repository was deleted")
	}
}

func testTagInfoPages(t *testing.T, s metadata.Store) {
	for _, tag := range []string{"v1", "latest", "v2", "dev"} {
		putManifest(t, s, newManifest("a/b", tag), tag)
		time.Sleep(2 * time.Millisecond)
	}
	tags, total, err := s.ListTagInfo(t.Context(), "a/b", metadata.TagQuery{Sort: metadata.SortByLastPushed, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if names := tagNames(tags); !slices.Equal(names, []string{"dev", "v2"}) || total != 4 {
		t.Errorf("newest page = %q of %d, want dev, v2 of 4", names, total)
	}
	if len(tags[0].Content) == 0 || tags[0].MediaType == "" || tags[0].Digest == "" {
		t.Errorf("tag info lacks its manifest: %+v", tags[0])
	}
	tags, total, err = s.ListTagInfo(t.Context(), "a/b", metadata.TagQuery{Filter: "v", Sort: metadata.SortByName})
	if err != nil {
		t.Fatal(err)
	}
	if names := tagNames(tags); !slices.Equal(names, []string{"dev", "v1", "v2"}) || total != 3 {
		t.Errorf("filter v = %q (%d), want dev, v1, v2 (names containing v)", names, total)
	}
	if _, _, err := s.ListTagInfo(t.Context(), "no/such", metadata.TagQuery{}); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("ListTagInfo(missing repo) = %v, want ErrNotFound", err)
	}
}

func testTagPushedBy(t *testing.T, s metadata.Store) {
	m := newManifest("a/b", "one")
	m.PushedBy = "alice"
	putManifest(t, s, m, "v1")
	m2 := newManifest("a/b", "two")
	m2.PushedBy = "bob"
	putManifest(t, s, m2, "v1")
	tag, err := s.GetTagInfo(t.Context(), "a/b", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if tag.PushedBy != "bob" || tag.Digest != m2.Digest {
		t.Errorf("tag = %+v, want pushed by bob at %s", tag, m2.Digest)
	}
}

func testAddPulls(t *testing.T, s metadata.Store) {
	putManifest(t, s, newManifest("a/b", "one"), "v1")
	at := time.Now().UTC().Truncate(time.Millisecond)
	pulls := []metadata.Pull{{Repo: "a/b", Tag: "v1", Count: 3, At: at}, {Repo: "a/b", Tag: "gone", Count: 2, At: at}, {Repo: "no/such", Tag: "x", Count: 1, At: at}}
	if err := s.AddPulls(t.Context(), pulls); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPulls(t.Context(), pulls[:1]); err != nil {
		t.Fatal(err)
	}
	info, err := s.GetRepositoryInfo(t.Context(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if info.PullCount != 8 || !info.LastPulled.Equal(at) {
		t.Errorf("pulls = %d at %v, want 8 at %v", info.PullCount, info.LastPulled, at)
	}
	tag, err := s.GetTagInfo(t.Context(), "a/b", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if !tag.LastPulled.Equal(at) {
		t.Errorf("tag last pulled = %v, want %v", tag.LastPulled, at)
	}
}

func tagNames(tags []metadata.TagInfo) []string {
	out := []string{}
	for _, t := range tags {
		out = append(out, t.Name)
	}
	return out
}
