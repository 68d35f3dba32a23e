package metadatatest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// RunLineage runs the contract of metadata.LineageStore.
func RunLineage(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, lineageStore)
	}{
		{"PutManifest_RecordsLineageOnceGetLineageReadsIt", testLineageRoundTrip},
		{"PutLineage_ReplacesAndNeedsTheManifest", testPutLineage},
		{"GoldenByChain_FindsGoldenImagesOnly", testGoldenByChain},
		{"PutManifest_FindBaseRecordsTheLongestGoldenImage", testFindBase},
		{"SetGolden_UnflaggingForgetsBasesFoundByLayers", testSetGolden},
		{"DerivedImages_ListsTagsOfImagesAndIndexesByBase", testDerivedImages},
		{"DerivedImages_KeepsVisibleRepositories", testDerivedVisible},
		{"DerivedImages_FollowTagsLineagesAndDeletes", testDerivedFollowsWrites},
		{"DerivedImages_IndexTagFollowsItsPlatforms", testDerivedIndexPlatforms},
		{"ManifestsWithoutLineage_PagesInDigestOrder", testWithoutLineage},
		{"BaselessImages_FindsByFirstChain_FirstChainsListsThem", testBaselessImages},
		{"TagTargets_ListsTagsMissingRepoIsNotFound_TagsAtThoseOfADigest", testTagTargets},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ls, ok := s.(metadata.LineageStore)
			if !ok {
				t.Fatalf("%T is not a metadata.LineageStore", s)
			}
			tc.test(t, lineageStore{s, ls})
		})
	}
}

type lineageStore struct {
	metadata.Store
	metadata.LineageStore
}

// putImage stores an image manifest of repo with the given lineage, its
// blobs linked, and tags pointing at it.
func putImage(t *testing.T, s lineageStore, repo, seed string, l *metadata.Lineage, tags ...string) *metadata.Manifest {
	t.Helper()
	m := newManifest(repo, seed)
	for _, b := range m.Blobs {
		linkBlob(t, s, repo, b, 3)
	}
	if l != nil {
		l.Repo, l.Digest = repo, m.Digest
	}
	m.Lineage = l
	putManifest(t, s, m, tags...)
	return m
}

// twoGoldenBases stores two golden images of golden/base, tagged 1.0 and
// 1.1, on chains of their own.
func twoGoldenBases(t *testing.T, s lineageStore) (g1, g2 *metadata.Manifest) {
	t.Helper()
	g1 = putImage(t, s, "golden/base", "b1", &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1, Golden: true}, "1.0")
	g2 = putImage(t, s, "golden/base", "b2", &metadata.Lineage{Chain: "d1", First: "d1", Layers: 1, Golden: true}, "1.1")
	return g1, g2
}

// builtOn is the lineage of an image of two layers found built on g by
// its layers, g then carrying tags.
func builtOn(g *metadata.Manifest, tags ...string) *metadata.Lineage {
	return &metadata.Lineage{Chain: "x", First: "x", Layers: 2,
		Base: metadata.BaseRef{Repo: "golden/base", Digest: g.Digest, Tags: tags, Layers: 1, Source: "layers"}}
}

func getLineage(t *testing.T, s lineageStore, repo string, d digest.Digest) *metadata.Lineage {
	t.Helper()
	l, err := s.GetLineage(t.Context(), repo, d)
	if err != nil {
		t.Fatalf("GetLineage(%s, %s): %v", repo, d, err)
	}
	return l
}

func testLineageRoundTrip(t *testing.T, s lineageStore) {
	base := putImage(t, s, "golden/base", "b", &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1, Golden: true}, "1.0")
	want := &metadata.Lineage{Chain: "c2", First: "c1", Layers: 2, Note: "annotation doubted",
		Base: metadata.BaseRef{Repo: "golden/base", Digest: base.Digest, Tags: []string{"1", "1.0"}, Layers: 1, Source: "layers"}}
	app := putImage(t, s, "team/app", "a", want, "v1")
	if got := getLineage(t, s, "team/app", app.Digest); !reflect.DeepEqual(got, want) {
		t.Errorf("GetLineage = %+v; want %+v", got, want)
	}
	// A push of the same manifest again keeps what its first push found.
	again := newManifest("team/app", "a")
	again.Lineage = &metadata.Lineage{Repo: "team/app", Digest: app.Digest, Chain: "c2", First: "c1", Layers: 2}
	putManifest(t, s, again, "v2")
	if got := getLineage(t, s, "team/app", app.Digest); got.Base.Repo != "golden/base" {
		t.Errorf("after a second push, base = %+v; want the first push's", got.Base)
	}
	_, err := s.GetLineage(t.Context(), "team/app", digest.FromString("nothing"))
	wantErr(t, "GetLineage(unknown)", err, metadata.ErrNotFound)
	// The lineage goes with its manifest.
	if err := s.DeleteManifest(t.Context(), "team/app", app.Digest); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetLineage(t.Context(), "team/app", app.Digest)
	wantErr(t, "GetLineage(deleted)", err, metadata.ErrNotFound)
}

func testPutLineage(t *testing.T, s lineageStore) {
	m := putImage(t, s, "team/app", "a", nil, "v1")
	l := &metadata.Lineage{Repo: "team/app", Digest: m.Digest, Chain: "c", First: "c", Layers: 1}
	if err := s.PutLineage(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	l.Golden, l.Base = true, metadata.BaseRef{Repo: "x/y", Digest: digest.FromString("y"), Layers: 1, Source: "annotation"}
	if err := s.PutLineage(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if got := getLineage(t, s, "team/app", m.Digest); !reflect.DeepEqual(got, l) {
		t.Errorf("after PutLineage twice, GetLineage = %+v; want %+v", got, l)
	}
	err := s.PutLineage(t.Context(), &metadata.Lineage{Repo: "team/app", Digest: digest.FromString("none"), Chain: "c"})
	wantErr(t, "PutLineage(unknown manifest)", err, metadata.ErrNotFound)
}

func testGoldenByChain(t *testing.T, s lineageStore) {
	g1 := putImage(t, s, "golden/base", "b1", &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1, Golden: true}, "1.0", "1")
	g2 := putImage(t, s, "golden/sdk", "s1", &metadata.Lineage{Chain: "c3", First: "c1", Layers: 3, Golden: true}, "1")
	g3 := putImage(t, s, "golden/sdk", "s0", &metadata.Lineage{Chain: "c3", First: "c1", Layers: 3, Golden: true})
	putImage(t, s, "team/app", "a", &metadata.Lineage{Chain: "c2", First: "c1", Layers: 2}, "v1")
	got, err := s.GoldenByChain(t.Context(), []string{"c1", "c2", "c3", "c4"})
	if err != nil {
		t.Fatal(err)
	}
	want := []metadata.GoldenImage{
		{Repo: "golden/sdk", Digest: g2.Digest, Chain: "c3", Layers: 3, Tags: []string{"1"}},
		{Repo: "golden/sdk", Digest: g3.Digest, Chain: "c3", Layers: 3},
		{Repo: "golden/base", Digest: g1.Digest, Chain: "c1", Layers: 1, Tags: []string{"1", "1.0"}},
	}
	if g3.Digest < g2.Digest {
		want[0], want[1] = want[1], want[0]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GoldenByChain = %+v; want %+v (longest first, golden only, with their tags)", got, want)
	}
	if got, err := s.GoldenByChain(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("GoldenByChain(nil) = %v, %v; want nothing", got, err)
	}
}

func testFindBase(t *testing.T, s lineageStore) {
	ctx := t.Context()
	putImage(t, s, "golden/base", "b1", &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1, Golden: true}, "1.0")
	sdk := putImage(t, s, "golden/sdk", "s1", &metadata.Lineage{Chain: "c3", First: "c1", Layers: 3, Golden: true}, "1", "1.2")
	putImage(t, s, "team/lib", "l", &metadata.Lineage{Chain: "c4", First: "c1", Layers: 4}, "v1")
	asked := &metadata.Lineage{Chain: "c5", First: "c1", Layers: 5, FindBase: []string{"c1", "c2", "c3", "c4", "c5"}}
	app := putImage(t, s, "team/app", "a", asked, "v1")
	if asked.Base.Repo != "" {
		t.Errorf("PutManifest wrote the base it found into the caller's lineage: %+v", asked.Base)
	}
	want := metadata.BaseRef{Repo: "golden/sdk", Digest: sdk.Digest, Tags: []string{"1", "1.2"}, Layers: 3, Source: metadata.SourceLayers}
	if got := getLineage(t, s, "team/app", app.Digest); !reflect.DeepEqual(got.Base, want) {
		t.Errorf("base found = %+v; want %+v (the longest golden image, not team/lib, which is not golden)", got.Base, want)
	}
	derived, total, err := s.DerivedImages(ctx, metadata.DerivedQuery{BaseRepo: "golden/sdk"})
	if err != nil || total != 1 || len(derived) != 1 || derived[0].Repo != "team/app" || derived[0].Tag != "v1" {
		t.Errorf("DerivedImages(golden/sdk) = %+v, %d, %v; want team/app:v1, derived from the base found", derived, total, err)
	}
	// A base given wins; none golden among the chains finds none.
	given := metadata.BaseRef{Repo: "golden/base", Digest: sdk.Digest, Layers: 1, Source: metadata.SourceAnnotation}
	annotated := putImage(t, s, "team/app", "b", &metadata.Lineage{Chain: "c5", First: "c1", Layers: 5, Base: given,
		FindBase: []string{"c1", "c2", "c3", "c4", "c5"}})
	if got := getLineage(t, s, "team/app", annotated.Digest); !reflect.DeepEqual(got.Base, given) {
		t.Errorf("base with one given = %+v; want it kept, %+v", got.Base, given)
	}
	alone := putImage(t, s, "team/app", "c", &metadata.Lineage{Chain: "x2", First: "x1", Layers: 2, FindBase: []string{"x1", "x2"}})
	if got := getLineage(t, s, "team/app", alone.Digest); got.Base.Repo != "" {
		t.Errorf("base found among no golden chain: %+v", got.Base)
	}
	// An index pushed before its platform (sparse): the base found when
	// the platform comes is its tag's too.
	platform := newManifest("team/multi", "p")
	idx := &metadata.Manifest{Repo: "team/multi", MediaType: mediaTypeIndex, Children: []digest.Digest{platform.Digest}}
	idx.Content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"digest":%q}]}`, mediaTypeIndex, platform.Digest)
	idx.Digest = digest.FromBytes(idx.Content)
	putManifest(t, s, idx, "latest")
	putImage(t, s, "team/multi", "p", &metadata.Lineage{Chain: "y2", First: "c1", Layers: 2, FindBase: []string{"c1", "y2"}})
	derived, total, err = s.DerivedImages(ctx, metadata.DerivedQuery{BaseRepo: "golden/base"})
	if err != nil || total != 1 || len(derived) != 1 || derived[0].Repo != "team/multi" || derived[0].Tag != "latest" || derived[0].Digest != idx.Digest {
		t.Errorf("DerivedImages(golden/base) = %+v, %d, %v; want team/multi:latest, the index listing the platform built on it", derived, total, err)
	}
}

func testSetGolden(t *testing.T, s lineageStore) {
	ctx := t.Context()
	g := putImage(t, s, "golden/base", "b1", &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1}, "1")
	putImage(t, s, "golden/base", "b2", &metadata.Lineage{Chain: "d1", First: "d1", Layers: 1}, "2")
	if n, err := s.SetGolden(ctx, "golden/base", true); err != nil || n != 2 {
		t.Fatalf("SetGolden(true) = %d, %v; want 2", n, err)
	}
	if n, err := s.SetGolden(ctx, "golden/base", true); err != nil || n != 0 {
		t.Errorf("SetGolden(true) again = %d, %v; want 0", n, err)
	}
	if repos, err := s.GoldenRepositories(ctx); err != nil || !reflect.DeepEqual(repos, []string{"golden/base"}) {
		t.Errorf("GoldenRepositories = %v, %v; want [golden/base]", repos, err)
	}
	byLayers := putImage(t, s, "team/app", "a", &metadata.Lineage{Chain: "c2", First: "c1", Layers: 2,
		Base: metadata.BaseRef{Repo: "golden/base", Digest: g.Digest, Tags: []string{"1"}, Layers: 1, Source: "layers"}})
	annotated := putImage(t, s, "team/app", "b", &metadata.Lineage{Chain: "c2", First: "c1", Layers: 2,
		Base: metadata.BaseRef{Repo: "golden/base", Digest: g.Digest, Tags: []string{"1"}, Layers: 1, Source: "annotation"}})
	if n, err := s.SetGolden(ctx, "golden/base", false); err != nil || n != 2 {
		t.Fatalf("SetGolden(false) = %d, %v; want 2", n, err)
	}
	if got, _ := s.GoldenByChain(ctx, []string{"c1"}); len(got) != 0 {
		t.Errorf("GoldenByChain after unflagging = %v; want nothing", got)
	}
	if repos, _ := s.GoldenRepositories(ctx); len(repos) != 0 {
		t.Errorf("GoldenRepositories after unflagging = %v; want none", repos)
	}
	if l := getLineage(t, s, "team/app", byLayers.Digest); l.Base.Repo != "" {
		t.Errorf("base found by layers kept after its repository stopped being golden: %+v", l.Base)
	}
	if l := getLineage(t, s, "team/app", annotated.Digest); l.Base.Repo != "golden/base" {
		t.Errorf("base named by annotation forgotten: %+v", l.Base)
	}
}

func testDerivedImages(t *testing.T, s lineageStore) {
	ctx := t.Context()
	g1 := putImage(t, s, "golden/base", "b1", &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1, Golden: true}, "1.0")
	g2 := putImage(t, s, "golden/base", "b2", &metadata.Lineage{Chain: "d1", First: "d1", Layers: 1, Golden: true}, "1.1", "1")
	putImage(t, s, "team/api", "api1", builtOn(g1, "1", "1.0"), "v1", "stable")
	putImage(t, s, "team/api", "api2", builtOn(g2, "1", "1.1"), "v2")
	putImage(t, s, "team/api", "untagged", builtOn(g2, "1"))
	// An index whose two platforms share one base is one row.
	p1 := putImage(t, s, "team/web", "amd64", builtOn(g1, "1.0"))
	p2 := putImage(t, s, "team/web", "arm64", builtOn(g1, "1.0"))
	idx := &metadata.Manifest{Repo: "team/web", MediaType: mediaTypeIndex, Children: []digest.Digest{p1.Digest, p2.Digest}}
	idx.Content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"digest":%q},{"digest":%q}]}`, mediaTypeIndex, p1.Digest, p2.Digest)
	idx.Digest = digest.FromBytes(idx.Content)
	putManifest(t, s, idx, "v1")
	putImage(t, s, "team/other", "o", &metadata.Lineage{Chain: "y", First: "y", Layers: 1}, "v1")

	got, total, err := s.DerivedImages(ctx, metadata.DerivedQuery{BaseRepo: "golden/base"})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ repo, tag, base string }
	var rows []row
	for _, d := range got {
		rows = append(rows, row{d.Repo, d.Tag, d.Base.Digest.String()})
		if d.PushedAt.IsZero() || d.Digest == "" || d.Base.Layers != 1 || d.Base.Source != "layers" {
			t.Errorf("derived %s:%s = %+v; want digest, push time and base filled", d.Repo, d.Tag, d)
		}
	}
	want := []row{
		{"team/api", "stable", g1.Digest.String()}, {"team/api", "v1", g1.Digest.String()},
		{"team/api", "v2", g2.Digest.String()}, {"team/web", "v1", g1.Digest.String()},
	}
	if total != 4 || !reflect.DeepEqual(rows, want) {
		t.Errorf("DerivedImages = %v (total %d); want %v (total 4)", rows, total, want)
	}
	if got[0].Digest != got[1].Digest || got[3].Digest != idx.Digest {
		t.Errorf("digests = %s, %s, %s; want the tags' targets (the index for team/web)", got[0].Digest, got[1].Digest, got[3].Digest)
	}
	if !reflect.DeepEqual(got[2].Base.Tags, []string{"1", "1.1"}) {
		t.Errorf("base tags = %v; want [1 1.1]", got[2].Base.Tags)
	}

	page, total, err := s.DerivedImages(ctx, metadata.DerivedQuery{BaseRepo: "golden/base", BaseDigests: []digest.Digest{g1.Digest}, Offset: 1, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(page) != 1 || page[0].Repo != "team/api" || page[0].Tag != "v1" {
		t.Errorf("DerivedImages(g1, page 2 of 1) = %+v (total %d); want team/api:v1 of 3", page, total)
	}
	if none, total, err := s.DerivedImages(ctx, metadata.DerivedQuery{BaseRepo: "golden/none"}); err != nil || total != 0 || len(none) != 0 {
		t.Errorf("DerivedImages(unknown base) = %v, %d, %v; want nothing", none, total, err)
	}
}

func testDerivedVisible(t *testing.T, s lineageStore) {
	g := putImage(t, s, "golden/base", "b1", &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1, Golden: true}, "1")
	on := &metadata.Lineage{Chain: "x", First: "c1", Layers: 2, Base: metadata.BaseRef{Repo: "golden/base", Digest: g.Digest, Layers: 1, Source: "layers"}}
	putImage(t, s, "alice/app", "a", on, "v1")
	on2 := *on
	putImage(t, s, "bob/app", "b", &on2, "v1")
	got, total, err := s.DerivedImages(t.Context(), metadata.DerivedQuery{BaseRepo: "golden/base",
		Visible: &metadata.VisibleTo{Namespaces: []string{"alice"}, Default: "private"}})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(got) != 1 || got[0].Repo != "alice/app" {
		t.Errorf("DerivedImages(visible to alice) = %+v (total %d); want alice/app only", got, total)
	}
}

// testDerivedFollowsWrites: "used by" is kept at write time, so every
// write that changes which tags sit on a base must show in it at once.
func testDerivedFollowsWrites(t *testing.T, s lineageStore) {
	ctx := t.Context()
	g1, g2 := twoGoldenBases(t, s)
	on := func(g *metadata.Manifest) *metadata.Lineage { return builtOn(g, "1") }
	on2 := func(g *metadata.Manifest) *metadata.Lineage {
		l := on(g)
		l.Base.Source = "annotation"
		return l
	}
	usedBy := func(step string, g *metadata.Manifest, want ...string) {
		t.Helper()
		got, total, err := s.DerivedImages(ctx, metadata.DerivedQuery{BaseRepo: "golden/base", BaseDigests: []digest.Digest{g.Digest}})
		if err != nil {
			t.Fatalf("%s: DerivedImages: %v", step, err)
		}
		names := []string{}
		for _, d := range got {
			names = append(names, d.Repo+":"+d.Tag)
		}
		if total != len(want) || !reflect.DeepEqual(names, append([]string{}, want...)) {
			t.Errorf("%s: used by %s = %v (total %d); want %v", step, g.Digest, names, total, want)
		}
	}
	a := putImage(t, s, "team/app", "a", on(g1), "v1", "v2")
	b := putImage(t, s, "team/app", "b", on2(g2))
	usedBy("pushed", g1, "team/app:v1", "team/app:v2")

	putManifest(t, s, b, "v1") // the tag moves to an image on g2
	usedBy("tag moved (old base)", g1, "team/app:v2")
	usedBy("tag moved (new base)", g2, "team/app:v1")
	if err := s.DeleteTag(ctx, "team/app", "v1"); err != nil {
		t.Fatal(err)
	}
	usedBy("tag deleted", g2)

	// An index pushed before its platform (sparse): the platform's
	// lineage, when it comes, puts the index's tag on its base.
	c := newManifest("team/multi", "c")
	idx := &metadata.Manifest{Repo: "team/multi", MediaType: mediaTypeIndex, Children: []digest.Digest{c.Digest}}
	idx.Content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"digest":%q}]}`, mediaTypeIndex, c.Digest)
	idx.Digest = digest.FromBytes(idx.Content)
	putManifest(t, s, idx, "latest")
	usedBy("index before its platform", g1, "team/app:v2")
	putImage(t, s, "team/multi", "c", on(g1))
	usedBy("platform pushed", g1, "team/app:v2", "team/multi:latest")

	l := on(g2)
	l.Repo, l.Digest = "team/multi", c.Digest
	if err := s.PutLineage(ctx, l); err != nil {
		t.Fatal(err)
	}
	usedBy("lineage replaced (old base)", g1, "team/app:v2")
	usedBy("lineage replaced (new base)", g2, "team/multi:latest")
	if err := s.DeleteManifest(ctx, "team/multi", c.Digest); err != nil {
		t.Fatal(err)
	}
	usedBy("platform deleted", g2)

	if bulk, ok := s.Store.(metadata.Bulk); ok {
		// wharf migrate writes tags and lineages through Load: in either
		// order, the derived rows follow.
		rec := metadata.Record{Key: []string{"team/app", "v3"}, Values: []any{b.Digest.String(), int64(1), "copy", int64(0)}}
		if _, err := bulk.Load(ctx, metadata.KindTags, []metadata.Record{rec}, metadata.LoadKeep); err != nil {
			t.Fatal(err)
		}
		usedBy("tag loaded", g2, "team/app:v3")
		rec.Values[0] = a.Digest.String()
		if _, err := bulk.Load(ctx, metadata.KindTags, []metadata.Record{rec}, metadata.LoadReplace); err != nil {
			t.Fatal(err)
		}
		usedBy("tag loaded again, moved", g2)
		usedBy("tag loaded again, moved (new base)", g1, "team/app:v2", "team/app:v3")
		rec.Values[0] = putImage(t, s, "team/app", "plain", nil).Digest.String()
		if _, err := bulk.Load(ctx, metadata.KindTags, []metadata.Record{rec}, metadata.LoadReplace); err != nil {
			t.Fatal(err)
		}
		usedBy("tag loaded again, moved to an image on no base", g1, "team/app:v2")
	}

	// A base found by layers is forgotten when its repository stops being
	// golden; one named by an annotation stays.
	putManifest(t, s, b, "v4")
	if _, err := s.SetGolden(ctx, "golden/base", false); err != nil {
		t.Fatal(err)
	}
	usedBy("base no longer golden (by layers)", g1)
	usedBy("base no longer golden (by annotation)", g2, "team/app:v4")
	if err := s.DeleteRepository(ctx, "team/app"); err != nil {
		t.Fatal(err)
	}
	usedBy("repository deleted", g2)

	// A manifest stored before lineage was, pushed again with one: the
	// tags that already point at it are on its base.
	putImage(t, s, "team/late", "l", nil, "old")
	again := newManifest("team/late", "l")
	again.Lineage = on(g1)
	again.Lineage.Repo, again.Lineage.Digest = again.Repo, again.Digest
	putManifest(t, s, again)
	usedBy("stored again with a lineage", g1, "team/late:old")
}

func testWithoutLineage(t *testing.T, s lineageStore) {
	ctx := t.Context()
	var want []digest.Digest
	for i := range 3 {
		want = append(want, putImage(t, s, "golden/base", fmt.Sprint("old", i), nil).Digest)
	}
	putImage(t, s, "golden/base", "new", &metadata.Lineage{Chain: "c", First: "c", Layers: 1})
	putImage(t, s, "team/app", "elsewhere", nil)
	slices.Sort(want)
	var got []digest.Digest
	var after digest.Digest
	for {
		ms, err := s.ManifestsWithoutLineage(ctx, "golden/base", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if len(m.Content) == 0 || m.MediaType == "" {
				t.Errorf("manifest %s without content or media type", m.Digest)
			}
			got = append(got, m.Digest)
		}
		if len(ms) < 2 {
			break
		}
		after = ms[len(ms)-1].Digest
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ManifestsWithoutLineage pages = %v; want %v", got, want)
	}
}

func testBaselessImages(t *testing.T, s lineageStore) {
	ctx := t.Context()
	a := putImage(t, s, "team/a", "a", &metadata.Lineage{Chain: "a2", First: "f1", Layers: 2})
	b := putImage(t, s, "team/b", "b", &metadata.Lineage{Chain: "b2", First: "f1", Layers: 2})
	putImage(t, s, "team/c", "c", &metadata.Lineage{Chain: "c2", First: "f2", Layers: 2})
	putImage(t, s, "team/d", "d", &metadata.Lineage{Chain: "d2", First: "f1", Layers: 2,
		Base: metadata.BaseRef{Repo: "golden/x", Digest: digest.FromString("x"), Layers: 1, Source: "layers"}})
	putImage(t, s, "team/a", "a-empty", &metadata.Lineage{Layers: 0})
	if firsts, err := s.FirstChains(ctx, "team/a"); err != nil || !reflect.DeepEqual(firsts, []string{"f1"}) {
		t.Errorf("FirstChains(team/a) = %v, %v; want [f1]", firsts, err)
	}
	got, err := s.BaselessImages(ctx, []string{"f1", "f9"}, metadata.ManifestRef{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []metadata.ManifestRef{{Repo: "team/a", Digest: a.Digest}, {Repo: "team/b", Digest: b.Digest}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BaselessImages = %v; want %v", got, want)
	}
	got, err = s.BaselessImages(ctx, []string{"f1"}, want[0], 10)
	if err != nil || !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("BaselessImages after %v = %v, %v; want %v", want[0], got, err, want[1:])
	}
}

func testTagTargets(t *testing.T, s lineageStore) {
	m := putImage(t, s, "golden/base", "b", nil, "1.0", "1")
	got, err := s.TagTargets(t.Context(), "golden/base")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "1" || got[1].Name != "1.0" || got[0].Digest != m.Digest || got[0].PushedAt.IsZero() {
		t.Errorf("TagTargets = %+v; want 1 and 1.0 at %s with push times", got, m.Digest)
	}
	putImage(t, s, "golden/base", "other", nil, "2.0")
	if at, err := s.TagsAt(t.Context(), "golden/base", m.Digest); err != nil || !reflect.DeepEqual(at, []string{"1", "1.0"}) {
		t.Errorf("TagsAt = %v, %v; want [1 1.0]", at, err)
	}
	if _, err := s.TagTargets(t.Context(), "no/such"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("TagTargets(missing repo) error = %v; want ErrNotFound", err)
	}
}

// usedByOf returns "repo:tag" of the tags on base image g of golden/base,
// failing unless the count agrees with the page.
func usedByOf(t *testing.T, s lineageStore, g *metadata.Manifest) []string {
	t.Helper()
	got, total, err := s.DerivedImages(t.Context(), metadata.DerivedQuery{BaseRepo: "golden/base", BaseDigests: []digest.Digest{g.Digest}})
	if err != nil {
		t.Fatalf("DerivedImages: %v", err)
	}
	names := []string{}
	for _, d := range got {
		names = append(names, d.Repo+":"+d.Tag)
	}
	if total != len(names) {
		t.Errorf("DerivedImages(%s) counts %d for a page of %v", g.Digest, total, names)
	}
	return names
}

// testDerivedIndexPlatforms: a tag on an index is on each base one of its
// platforms is on, whichever platforms go or change base, and a tag that
// moves from an image to an index takes the index's bases.
func testDerivedIndexPlatforms(t *testing.T, s lineageStore) {
	ctx := t.Context()
	g1, g2 := twoGoldenBases(t, s)
	want := func(step string, g *metadata.Manifest, names ...string) {
		t.Helper()
		if got := usedByOf(t, s, g); !reflect.DeepEqual(got, append([]string{}, names...)) {
			t.Errorf("%s: used by %s = %v; want %v", step, g.Digest, got, names)
		}
	}
	app := putImage(t, s, "team/web", "app", builtOn(g2), "latest")
	want("tag on an image", g2, "team/web:latest")
	var platforms []*metadata.Manifest
	for _, p := range []string{"amd64", "arm64", "s390x"} {
		platforms = append(platforms, putImage(t, s, "team/web", p, builtOn(g1)))
	}
	idx := &metadata.Manifest{Repo: "team/web", MediaType: mediaTypeIndex}
	idx.Content = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[`, mediaTypeIndex))
	for i, p := range platforms {
		idx.Children = append(idx.Children, p.Digest)
		if i > 0 {
			idx.Content = append(idx.Content, ',')
		}
		idx.Content = fmt.Appendf(idx.Content, `{"digest":%q}`, p.Digest)
	}
	idx.Content = append(idx.Content, "]}"...)
	idx.Digest = digest.FromBytes(idx.Content)
	putManifest(t, s, idx, "latest") // from an image on g2 to an index on g1
	want("tag moved to an index (old base)", g2)
	want("tag moved to an index (new base)", g1, "team/web:latest")

	// The first platform written names the index's row on g1.
	if err := s.DeleteManifest(ctx, "team/web", platforms[0].Digest); err != nil {
		t.Fatal(err)
	}
	want("a platform deleted, others on the base", g1, "team/web:latest")
	l := builtOn(g2)
	l.Repo, l.Digest = "team/web", platforms[1].Digest
	if err := s.PutLineage(ctx, l); err != nil {
		t.Fatal(err)
	}
	want("a platform re-based (old base, one left on it)", g1, "team/web:latest")
	want("a platform re-based (new base)", g2, "team/web:latest")
	l = builtOn(g2)
	l.Repo, l.Digest = "team/web", platforms[2].Digest
	if err := s.PutLineage(ctx, l); err != nil {
		t.Fatal(err)
	}
	want("the last platform re-based (old base)", g1)
	want("the last platform re-based (new base)", g2, "team/web:latest")

	putManifest(t, s, app, "latest") // back to the image
	want("tag moved back to the image", g2, "team/web:latest")

	// A manifest pushed again, now with a base to find, puts the tags
	// that already point at it on that base.
	late := putImage(t, s, "team/late", "l", nil, "old")
	again := newManifest("team/late", "l")
	again.Lineage = &metadata.Lineage{Chain: "c1x", First: "c1", Layers: 2, FindBase: []string{"c1", "c1x"}}
	again.Lineage.Repo, again.Lineage.Digest = again.Repo, again.Digest
	putManifest(t, s, again, "new")
	if again.Digest != late.Digest {
		t.Fatalf("pushed again as %s, first as %s", again.Digest, late.Digest)
	}
	want("stored again with a base to find", g1, "team/late:new", "team/late:old")
}
