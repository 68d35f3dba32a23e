package metadatatest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

func testPutGetManifest(t *testing.T, s metadata.Store) {
	img := newManifest("repo", "image")
	// Bytes are kept exactly as pushed, whitespace included.
	img.Content = append(img.Content, "\n  \t"...)
	img.Digest = digest.FromBytes(img.Content)
	putManifest(t, s, img, "latest")
	wantGetManifest(t, s, img)
	wantTagged(t, s, "latest", img)

	idx := &metadata.Manifest{
		Repo:      "repo",
		MediaType: mediaTypeIndex,
		Content:   []byte(fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"digest":%q}]}`, img.Digest)),
		Children:  []digest.Digest{img.Digest},
	}
	idx.Digest = digest.FromBytes(idx.Content)
	putManifest(t, s, idx, "multi")
	wantGetManifest(t, s, idx)
	wantTagged(t, s, "multi", idx)

	sig := newReferrer("repo", "signature", img.Digest, "application/vnd.example.signature",
		map[string]string{
			"org.opencontainers.image.created": "2024-05-01T12:00:00Z",
			"com.example.quote":                `"quoted" & <angle> \ back`,
			"com.example.unicode":              "ünïcødé ✓",
			"com.example.empty":                "",
		})
	putManifest(t, s, sig)
	wantGetManifest(t, s, sig)
}

func testPutManifestIdempotent(t *testing.T, s metadata.Store) {
	m := newManifest("repo", "m")
	m.Annotations = map[string]string{"k": "v"}
	for range 3 {
		putManifest(t, s, m, "latest")
	}
	wantGetManifest(t, s, m)
	wantTagged(t, s, "latest", m)
	wantTags(t, s, "repo", "latest")
	wantRepos(t, s, "repo")
	missing, err := s.MissingManifests(t.Context(), "repo", []digest.Digest{m.Digest})
	if err != nil || len(missing) != 0 {
		t.Errorf("MissingManifests after PutManifest = %v, %v; want none", missing, err)
	}
	// Pushing it again with other tags adds them and keeps the old one.
	putManifest(t, s, m, "v1", "v1.0")
	wantTags(t, s, "repo", "latest", "v1", "v1.0")
}

func testPutManifestTags(t *testing.T, s metadata.Store) {
	m := newManifest("repo", "m")
	putManifest(t, s, m, "latest", "1", "1.2", "1.2.3")
	for _, tag := range []string{"latest", "1", "1.2", "1.2.3"} {
		wantTagged(t, s, tag, m)
	}
	wantTags(t, s, "repo", "1", "1.2", "1.2.3", "latest")
	// Tags are per repository.
	wantNoTag(t, s, "other", "latest")
}

func testPutManifestRetag(t *testing.T, s metadata.Store) {
	old, cur := newManifest("repo", "old"), newManifest("repo", "new")
	putManifest(t, s, old, "latest", "v1")
	putManifest(t, s, cur, "latest")
	wantTagged(t, s, "latest", cur)
	wantTagged(t, s, "v1", old)
	wantTags(t, s, "repo", "latest", "v1")
	// The manifest that lost its tag is still there, by digest.
	wantGetManifest(t, s, old)

	// Moving the tag back works too.
	putManifest(t, s, old, "latest")
	wantTagged(t, s, "latest", old)
	wantGetManifest(t, s, cur)
}

func testGetManifestScoped(t *testing.T, s metadata.Store) {
	m := newManifest("repo/a", "m")
	putManifest(t, s, m, "latest")
	linkBlob(t, s, "repo/b", blobDigest("x"), 1)
	wantNoManifest(t, s, "repo/b", m.Digest)
	wantNoTag(t, s, "repo/b", "latest")
	missing, err := s.MissingManifests(t.Context(), "repo/b", []digest.Digest{m.Digest})
	if err != nil || !slices.Equal(missing, []digest.Digest{m.Digest}) {
		t.Errorf("MissingManifests(repo/b) = %v, %v; want [%s], nil", missing, err, m.Digest)
	}

	// The same manifest pushed to another repository is stored there too.
	m2 := *m
	m2.Repo = "repo/b"
	putManifest(t, s, &m2)
	wantGetManifest(t, s, &m2)
	wantNoTag(t, s, "repo/b", "latest")
}

func testGetManifestMissing(t *testing.T, s metadata.Store) {
	wantNoManifest(t, s, "unknown", digest.FromString("x"))
	putManifest(t, s, newManifest("repo", "m"))
	wantNoManifest(t, s, "repo", digest.FromString("x"))
}

func testGetTaggedManifestMissing(t *testing.T, s metadata.Store) {
	wantNoTag(t, s, "unknown", "latest")
	putManifest(t, s, newManifest("repo", "m"), "v1")
	wantNoTag(t, s, "repo", "latest")
	// Tags match exactly.
	wantNoTag(t, s, "repo", "V1")
	wantNoTag(t, s, "repo", "v")
}

func testMissingManifests(t *testing.T, s metadata.Store) {
	a, b, c := newManifest("repo", "a"), newManifest("repo", "b"), newManifest("other", "c")
	putManifest(t, s, a)
	putManifest(t, s, b, "latest")
	putManifest(t, s, c)
	// A linked blob is not a manifest.
	blob := blobDigest("blob")
	linkBlob(t, s, "repo", blob, 1)

	tests := []struct {
		repo string
		ds   []digest.Digest
		want []digest.Digest
	}{
		{"repo", nil, nil},
		{"repo", []digest.Digest{a.Digest, b.Digest}, nil},
		{"repo", []digest.Digest{a.Digest, c.Digest, blob}, []digest.Digest{c.Digest, blob}},
		{"other", []digest.Digest{a.Digest, b.Digest, c.Digest}, []digest.Digest{a.Digest, b.Digest}},
		{"unknown", []digest.Digest{a.Digest}, []digest.Digest{a.Digest}},
	}
	for _, tt := range tests {
		got, err := s.MissingManifests(t.Context(), tt.repo, tt.ds)
		if err != nil || !slices.Equal(sortedDigests(got), sortedDigests(tt.want)) {
			t.Errorf("MissingManifests(%s, %v) = %v, %v; want %v, nil", tt.repo, tt.ds, got, err, tt.want)
		}
	}
}

func testDeleteTag(t *testing.T, s metadata.Store) {
	m, other := newManifest("repo", "m"), newManifest("repo", "other")
	putManifest(t, s, m, "latest", "v1")
	putManifest(t, s, other, "v2")
	if err := s.DeleteTag(t.Context(), "repo", "latest"); err != nil {
		t.Fatalf("DeleteTag(repo, latest): %v", err)
	}
	wantNoTag(t, s, "repo", "latest")
	wantTagged(t, s, "v1", m)
	wantTagged(t, s, "v2", other)
	wantGetManifest(t, s, m)
	wantTags(t, s, "repo", "v1", "v2")

	// Deleting every tag leaves an existing repository with an empty list.
	for _, tag := range []string{"v1", "v2"} {
		if err := s.DeleteTag(t.Context(), "repo", tag); err != nil {
			t.Fatalf("DeleteTag(repo, %s): %v", tag, err)
		}
	}
	wantTags(t, s, "repo")
	wantRepoExists(t, s, "repo", true)
	wantGetManifest(t, s, m)
	wantGetManifest(t, s, other)
}

func testDeleteTagMissing(t *testing.T, s metadata.Store) {
	err := s.DeleteTag(t.Context(), "unknown", "latest")
	wantErr(t, "DeleteTag in unknown repository", err, metadata.ErrNotFound)

	m := newManifest("repo", "m")
	putManifest(t, s, m, "latest")
	err = s.DeleteTag(t.Context(), "repo", "v1")
	wantErr(t, "DeleteTag of unknown tag", err, metadata.ErrNotFound)
	err = s.DeleteTag(t.Context(), "other", "latest")
	wantErr(t, "DeleteTag in another repository", err, metadata.ErrNotFound)
	wantTagged(t, s, "latest", m)

	if err := s.DeleteTag(t.Context(), "repo", "latest"); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	err = s.DeleteTag(t.Context(), "repo", "latest")
	wantErr(t, "second DeleteTag", err, metadata.ErrNotFound)
}

func testDeleteManifest(t *testing.T, s metadata.Store) {
	m, keep := newManifest("repo", "m"), newManifest("repo", "keep")
	for _, b := range m.Blobs {
		linkBlob(t, s, "repo", b, 5)
	}
	putManifest(t, s, m, "latest", "v1", "v1.0")
	putManifest(t, s, keep, "stable")
	// The same digest in another repository is another manifest.
	elsewhere := *m
	elsewhere.Repo = "other"
	putManifest(t, s, &elsewhere, "latest")

	if err := s.DeleteManifest(t.Context(), "repo", m.Digest); err != nil {
		t.Fatalf("DeleteManifest(repo, %s): %v", m.Digest, err)
	}
	wantNoManifest(t, s, "repo", m.Digest)
	for _, tag := range []string{"latest", "v1", "v1.0"} {
		wantNoTag(t, s, "repo", tag)
	}
	wantTags(t, s, "repo", "stable")
	wantTagged(t, s, "stable", keep)
	wantGetManifest(t, s, keep)
	wantRepoExists(t, s, "repo", true)
	wantTagged(t, s, "latest", &elsewhere)
	// Blob links are not the manifest's to remove (garbage collection is).
	for _, b := range m.Blobs {
		wantBlobSize(t, s, "repo", b, 5)
	}
	missing, err := s.MissingManifests(t.Context(), "repo", []digest.Digest{m.Digest, keep.Digest})
	if err != nil || !slices.Equal(missing, []digest.Digest{m.Digest}) {
		t.Errorf("MissingManifests after delete = %v, %v; want [%s], nil", missing, err, m.Digest)
	}

	// Deleting the last manifest leaves the repository, without tags.
	if err := s.DeleteManifest(t.Context(), "repo", keep.Digest); err != nil {
		t.Fatalf("DeleteManifest(repo, %s): %v", keep.Digest, err)
	}
	wantTags(t, s, "repo")
	wantRepoExists(t, s, "repo", true)
	wantRepos(t, s, "other", "repo")
}

func testDeleteManifestMissing(t *testing.T, s metadata.Store) {
	m := newManifest("repo", "m")
	err := s.DeleteManifest(t.Context(), "repo", m.Digest)
	wantErr(t, "DeleteManifest in unknown repository", err, metadata.ErrNotFound)

	putManifest(t, s, m, "latest")
	err = s.DeleteManifest(t.Context(), "repo", digest.FromString("x"))
	wantErr(t, "DeleteManifest of unknown digest", err, metadata.ErrNotFound)
	err = s.DeleteManifest(t.Context(), "other", m.Digest)
	wantErr(t, "DeleteManifest in another repository", err, metadata.ErrNotFound)
	wantTagged(t, s, "latest", m)

	if err := s.DeleteManifest(t.Context(), "repo", m.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	err = s.DeleteManifest(t.Context(), "repo", m.Digest)
	wantErr(t, "second DeleteManifest", err, metadata.ErrNotFound)
}

func testDeleteManifestPutAgain(t *testing.T, s metadata.Store) {
	m := newManifest("repo", "m")
	putManifest(t, s, m, "latest")
	if err := s.DeleteManifest(t.Context(), "repo", m.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	putManifest(t, s, m, "again")
	wantGetManifest(t, s, m)
	wantTagged(t, s, "again", m)
	wantNoTag(t, s, "repo", "latest")
	wantTags(t, s, "repo", "again")
}

func testListTagsByteOrder(t *testing.T, s metadata.Store) {
	// Byte order, not numeric or a locale's: upper case before lower case,
	// "2.1.106" before "2.1.11", digits before letters.
	want := []string{"2.1.106", "2.1.11", "A", "Z", "_x", "a", "a-b", "a.b", "a_b", "latest", "v1.10", "v1.9"}
	m := newManifest("repo", "m")
	putManifest(t, s, m, "latest", "a", "Z", "v1.9")
	putManifest(t, s, m, "2.1.11", "a_b", "A", "_x")
	putManifest(t, s, m, "a.b", "v1.10", "2.1.106", "a-b")
	wantTags(t, s, "repo", want...)
}

func testListTagsPaginates(t *testing.T, s metadata.Store) {
	all := []string{"a", "b", "c", "d", "e"}
	putManifest(t, s, newManifest("repo", "m"), all...)
	// Another repository's tags never show up.
	putManifest(t, s, newManifest("repo/x", "m"), "bb", "z")
	tests := []struct {
		last string
		n    int
		want []string
	}{
		{"", 0, all},
		{"", -1, all},
		{"", 2, all[:2]},
		{"", 6, all},
		{"b", 2, []string{"c", "d"}},
		{"d", 2, []string{"e"}},
		{"e", 2, []string{}},
		{"e", 0, []string{}},
		{"bb", 0, []string{"c", "d", "e"}}, // last need not be a tag
		{"A", 1, []string{"a"}},
		{"z", 0, []string{}},
	}
	for _, tt := range tests {
		got, err := s.ListTags(t.Context(), "repo", tt.last, tt.n)
		if err != nil || got == nil || !slices.Equal(got, tt.want) {
			t.Errorf("ListTags(repo, %q, %d) = %#v, %v; want %q, nil", tt.last, tt.n, got, err, tt.want)
		}
	}
}

func testListTagsUnknownRepo(t *testing.T, s metadata.Store) {
	_, err := s.ListTags(t.Context(), "unknown", "", 0)
	wantErr(t, "ListTags(unknown)", err, metadata.ErrNotFound)
	putManifest(t, s, newManifest("repo", "m"), "latest")
	_, err = s.ListTags(t.Context(), "rep", "", 0)
	wantErr(t, "ListTags(rep)", err, metadata.ErrNotFound)
	_, err = s.ListTags(t.Context(), "unknown", "a", 10)
	wantErr(t, "ListTags(unknown, a, 10)", err, metadata.ErrNotFound)
}

func testListTagsNoTags(t *testing.T, s metadata.Store) {
	linkBlob(t, s, "blobs-only", blobDigest("x"), 1)
	putManifest(t, s, newManifest("untagged", "m"))
	for _, repo := range []string{"blobs-only", "untagged"} {
		for _, n := range []int{0, 10} {
			got, err := s.ListTags(t.Context(), repo, "", n)
			if err != nil || got == nil || len(got) != 0 {
				t.Errorf("ListTags(%s, \"\", %d) = %#v, %v; want an empty, non-nil list", repo, n, got, err)
			}
		}
	}
}

// wantReferrers checks the referrers of subject in repo, in any order.
func wantReferrers(t *testing.T, s metadata.Store, repo string, subject digest.Digest, artifactType string, want ...*metadata.Manifest) {
	t.Helper()
	call := fmt.Sprintf("Referrers(%s, %s, %q)", repo, subject, artifactType)
	got, err := s.Referrers(t.Context(), repo, subject, artifactType)
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	slices.SortFunc(got, func(a, b metadata.Descriptor) int { return cmp.Compare(a.Digest, b.Digest) })
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b *metadata.Manifest) int { return cmp.Compare(a.Digest, b.Digest) })
	if len(got) != len(want) {
		var ds []digest.Digest
		for _, d := range got {
			ds = append(ds, d.Digest)
		}
		t.Fatalf("%s = %d descriptors %v; want %d", call, len(got), ds, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Digest != w.Digest || g.MediaType != w.MediaType || g.Size != int64(len(w.Content)) || g.ArtifactType != w.ArtifactType {
			t.Errorf("%s[%d] = {%s %q size %d %q}; want {%s %q size %d %q}", call, i,
				g.Digest, g.MediaType, g.Size, g.ArtifactType, w.Digest, w.MediaType, len(w.Content), w.ArtifactType)
		}
		if !maps.Equal(g.Annotations, w.Annotations) {
			t.Errorf("%s[%d] annotations = %v; want %v", call, i, g.Annotations, w.Annotations)
		}
	}
}

const (
	typeSBOM = "application/vnd.example.sbom+json"
	typeSig  = "application/vnd.example.signature"
)

func testReferrers(t *testing.T, s metadata.Store) {
	img := newManifest("repo", "image")
	putManifest(t, s, img, "latest")
	sbom := newReferrer("repo", "sbom", img.Digest, typeSBOM, map[string]string{
		"org.opencontainers.image.created": "2024-05-01T12:00:00Z",
		"com.example.unicode":              "ünïcødé ✓",
	})
	sig := newReferrer("repo", "sig", img.Digest, typeSig, nil)
	putManifest(t, s, sbom)
	putManifest(t, s, sig, "sig")
	// A referrer of another manifest.
	putManifest(t, s, newReferrer("repo", "unrelated", digest.FromString("other"), typeSig, nil))

	wantReferrers(t, s, "repo", img.Digest, "", sbom, sig)
	// The image itself has no subject, so nothing refers to "no subject".
	wantReferrers(t, s, "repo", sbom.Digest, "")

	// Referrers may be pushed before their subject.
	later := newManifest("repo", "later")
	early := newReferrer("repo", "early", later.Digest, typeSBOM, map[string]string{"k": "v"})
	putManifest(t, s, early)
	wantReferrers(t, s, "repo", later.Digest, "", early)
	putManifest(t, s, later)
	wantReferrers(t, s, "repo", later.Digest, "", early)

	// Deleting a referrer removes it from the list.
	if err := s.DeleteManifest(t.Context(), "repo", sig.Digest); err != nil {
		t.Fatalf("DeleteManifest(sig): %v", err)
	}
	wantReferrers(t, s, "repo", img.Digest, "", sbom)
}

func testReferrersFilter(t *testing.T, s metadata.Store) {
	img := newManifest("repo", "image")
	putManifest(t, s, img)
	sbom1 := newReferrer("repo", "sbom1", img.Digest, typeSBOM, map[string]string{"n": "1"})
	sbom2 := newReferrer("repo", "sbom2", img.Digest, typeSBOM, nil)
	sig := newReferrer("repo", "sig", img.Digest, typeSig, map[string]string{"n": "3"})
	for _, m := range []*metadata.Manifest{sbom1, sbom2, sig} {
		putManifest(t, s, m)
	}
	wantReferrers(t, s, "repo", img.Digest, "", sbom1, sbom2, sig)
	wantReferrers(t, s, "repo", img.Digest, typeSBOM, sbom1, sbom2)
	wantReferrers(t, s, "repo", img.Digest, typeSig, sig)
	wantReferrers(t, s, "repo", img.Digest, "application/vnd.example.unknown")
	// The filter matches exactly.
	wantReferrers(t, s, "repo", img.Digest, "application/vnd.example")
}

func testReferrersScoped(t *testing.T, s metadata.Store) {
	img := newManifest("repo/a", "image")
	putManifest(t, s, img)
	mine := newReferrer("repo/a", "mine", img.Digest, typeSig, nil)
	putManifest(t, s, mine)
	// Another repository refers to the same subject digest.
	theirs := newReferrer("repo/b", "theirs", img.Digest, typeSig, nil)
	putManifest(t, s, theirs)

	wantReferrers(t, s, "repo/a", img.Digest, "", mine)
	wantReferrers(t, s, "repo/a", img.Digest, typeSig, mine)
	wantReferrers(t, s, "repo/b", img.Digest, "", theirs)
}

func testReferrersNone(t *testing.T, s metadata.Store) {
	img := newManifest("repo", "image")
	putManifest(t, s, img)
	wantReferrers(t, s, "repo", img.Digest, "")
	wantReferrers(t, s, "repo", img.Digest, typeSig)
	wantReferrers(t, s, "repo", digest.FromString("never pushed"), "")
}
