package importer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/importer"
	"github.com/wharf/wharf/internal/registry"
)

func runImport(t *testing.T, reg *registry.Service, tr *tree, opts importer.Options) (importer.Report, error, string) {
	t.Helper()
	src, err := importer.OpenSource(tr.root)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts.Progress = &out
	rep, err := importer.Import(t.Context(), reg, src, opts)
	return rep, err, out.String()
}

func mustImport(t *testing.T, reg *registry.Service, tr *tree, opts importer.Options) importer.Report {
	t.Helper()
	rep, err, out := runImport(t, reg, tr, opts)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	return rep
}

// wantManifest checks that repo:ref resolves in wharf to d with the
// source's bytes.
func wantManifest(t *testing.T, reg *registry.Service, repo, ref string, d digest.Digest, body []byte) {
	t.Helper()
	m, err := reg.GetManifest(t.Context(), repo, ref)
	if err != nil {
		t.Fatalf("%s:%s: %v", repo, ref, err)
	}
	if m.Digest != d || !bytes.Equal(m.Content, body) {
		t.Errorf("%s:%s is %s, want %s with the source's bytes", repo, ref, m.Digest, d)
	}
}

func wantBlob(t *testing.T, reg *registry.Service, repo string, content string) {
	t.Helper()
	rc, _, err := reg.OpenBlob(t.Context(), repo, digest.FromString(content))
	if err != nil {
		t.Fatalf("%s: blob %q: %v", repo, content, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if string(b) != content {
		t.Errorf("%s: blob reads %q, want %q", repo, b, content)
	}
}

// dependentFirst stores in repo a manifest whose digest sorts before the
// manifests it depends on, so that importing in digest order would fail:
// the test then proves the importer orders by dependency.
func dependentFirst(t *testing.T, tr *tree, repo string, make func(salt int) any, deps ...digest.Digest) (digest.Digest, []byte) {
	t.Helper()
	for salt := 0; salt < 1000; salt++ {
		m := make(salt)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if d := digest.FromBytes(b); !slices.ContainsFunc(deps, func(dep digest.Digest) bool { return dep < d }) {
			return tr.manifest(repo, m)
		}
	}
	t.Fatal("no salt sorts the dependent first")
	return "", nil
}

func TestImport_CopiesImagesIndexesAndReferrersWithDigestsIntact(t *testing.T) {
	tr := newTree(t)
	const web = "team/app/web" // a name of several components
	img, imgBody := tr.image(web, "layer one", "layer two")
	tr.tag(web, "v1", img)

	amd, _ := tr.image("team/app", "amd64 layer", "shared layer")
	arm, _ := tr.image("team/app", "arm64 layer", "shared layer")
	idx, idxBody := dependentFirst(t, tr, "team/app", func(salt int) any {
		return map[string]any{
			"schemaVersion": 2, "mediaType": registry.MediaTypeOCIIndex,
			"manifests":   []desc{{registry.MediaTypeOCIManifest, amd, 1}, {registry.MediaTypeOCIManifest, arm, 1}},
			"annotations": map[string]string{"salt": strings.Repeat("x", salt)},
		}
	}, amd, arm)
	tr.tag("team/app", "latest", idx)
	// A signature-like referrer of the index, without a mediaType (OCI
	// allows it; distribution stores it so).
	emptyCfg := tr.blob([]byte("{}"))
	tr.layerLink("team/app", emptyCfg)
	sig, sigBody := dependentFirst(t, tr, "team/app", func(salt int) any {
		return map[string]any{
			"schemaVersion": 2, "artifactType": "application/vnd.example.sig",
			"config":      desc{"application/vnd.oci.empty.v1+json", emptyCfg, 2},
			"layers":      []desc{},
			"subject":     desc{registry.MediaTypeOCIIndex, idx, int64(len(idxBody))},
			"annotations": map[string]string{"salt": strings.Repeat("y", salt)},
		}
	}, idx)
	// Upload leftovers are no repository.
	tr.write(tr.v2("repositories", "team/app", "_uploads", "0123", "data"), []byte("partial"))

	reg := newService(t, registry.Options{})
	rep := mustImport(t, reg, tr, importer.Options{})

	wantManifest(t, reg, web, "v1", img, imgBody)
	wantManifest(t, reg, "team/app", "latest", idx, idxBody)
	wantManifest(t, reg, "team/app", sig.String(), sig, sigBody)
	wantBlob(t, reg, web, "layer two")
	wantBlob(t, reg, "team/app", "shared layer")
	refs, err := reg.Referrers(t.Context(), "team/app", idx, "")
	if err != nil || len(refs) != 1 || refs[0].Digest != sig {
		t.Errorf("referrers of the index = %v, %v; want the signature", refs, err)
	}
	catalog, _ := reg.Catalog(t.Context(), "", 100)
	if !slices.Equal(catalog, []string{"team/app", web}) {
		t.Errorf("catalog %v", catalog)
	}
	// web: config + 2 layers; team/app: one config (both platforms' are
	// alike), 3 distinct layers and {}.
	want := importer.Report{Repositories: 2, BlobsImported: 8, ManifestsImported: 5, TagsSet: 2}
	rep.Bytes = 0
	if !reportEqual(rep, want) {
		t.Errorf("report %+v, want %+v", rep, want)
	}
}

func reportEqual(a, b importer.Report) bool {
	return a.Repositories == b.Repositories && a.BlobsImported == b.BlobsImported && a.BlobsSkipped == b.BlobsSkipped &&
		a.ManifestsImported == b.ManifestsImported && a.ManifestsSkipped == b.ManifestsSkipped &&
		a.TagsSet == b.TagsSet && a.TagsUnchanged == b.TagsUnchanged && a.TagsPruned == b.TagsPruned &&
		slices.Equal(a.TagsVanished, b.TagsVanished) && len(a.Problems) == len(b.Problems)
}

func TestImport_FinalPassImportsOnlyWhatChanged(t *testing.T) {
	tr := newTree(t)
	v1, v1Body := tr.image("app", "base", "v1 layer")
	tr.tag("app", "v1", v1)
	tr.tag("app", "stable", v1)
	reg := newService(t, registry.Options{})
	first := mustImport(t, reg, tr, importer.Options{})
	if first.BlobsImported != 3 || first.ManifestsImported != 1 || first.TagsSet != 2 {
		t.Fatalf("first pass %+v", first)
	}

	// While the first pass ran, the old registry took a new image that
	// shares a layer, and "stable" moved to it. The bytes wharf already
	// holds are then damaged in the source: a final pass that read them
	// again would report them corrupt.
	v2, v2Body := tr.image("app", "base", "v2 layer")
	tr.tag("app", "v2", v2)
	tr.tag("app", "stable", v2)
	for _, content := range []string{"base", "v1 layer"} {
		tr.write(tr.blobPath(digest.FromString(content)), []byte("damaged after the first pass"))
	}

	rep := mustImport(t, reg, tr, importer.Options{})
	// Only "v2 layer" is new; the config (alike in both), "base" and
	// "v1 layer" are skipped by digest.
	want := importer.Report{Repositories: 1, BlobsImported: 1, BlobsSkipped: 3, ManifestsImported: 1, ManifestsSkipped: 1,
		TagsSet: 2, TagsUnchanged: 1}
	if !reportEqual(rep, want) {
		t.Errorf("final pass %+v, want %+v", rep, want)
	}
	if rep.Bytes != int64(len("v2 layer")) {
		t.Errorf("final pass read %d bytes of blobs, want only the new ones", rep.Bytes)
	}
	wantManifest(t, reg, "app", "stable", v2, v2Body)
	wantManifest(t, reg, "app", "v1", v1, v1Body)
}

func TestImport_CorruptBlobIsReportedAndNeverStored(t *testing.T) {
	tr := newTree(t)
	bad, _ := tr.image("bad", "good layer", "soon corrupt")
	tr.tag("bad", "latest", bad)
	good, goodBody := tr.image("good", "other layer")
	tr.tag("good", "latest", good)
	corrupt := digest.FromString("soon corrupt")
	tr.write(tr.blobPath(corrupt), []byte("bit rot"))

	reg := newService(t, registry.Options{})
	rep, err, out := runImport(t, reg, tr, importer.Options{})
	if !errors.Is(err, importer.ErrIncomplete) {
		t.Fatalf("import: %v, want ErrIncomplete", err)
	}
	if _, err := reg.StatBlob(t.Context(), "bad", corrupt); !errors.Is(err, registry.ErrBlobUnknown) {
		t.Errorf("corrupt blob stored: stat says %v", err)
	}
	// The blob, the manifest that needs it and the tag on that manifest.
	if len(rep.Problems) != 3 || rep.Problems[0].Digest != corrupt || !errors.Is(rep.Problems[0].Err, registry.ErrDigestInvalid) ||
		!errors.Is(rep.Problems[1].Err, registry.ErrManifestBlobUnknown) || rep.Problems[2].Tag != "latest" {
		t.Errorf("problems %v", rep.Problems)
	}
	if !strings.Contains(out, "problem: bad@"+corrupt.String()) {
		t.Errorf("progress does not name the corrupt blob:\n%s", out)
	}
	// The rest imports.
	wantBlob(t, reg, "bad", "good layer")
	wantManifest(t, reg, "good", "latest", good, goodBody)
}

func TestImport_BlobMissingFromSourceFailsManifestUnlessSparse(t *testing.T) {
	for _, sparse := range []bool{false, true} {
		t.Run(map[bool]string{false: "strict", true: "sparse"}[sparse], func(t *testing.T) {
			tr := newTree(t)
			d, body := tr.image("app", "kept", "lost")
			tr.tag("app", "v1", d)
			lost := digest.FromString("lost")
			if err := os.Remove(tr.blobPath(lost)); err != nil {
				t.Fatal(err)
			}
			reg := newService(t, registry.Options{SparseManifests: sparse})
			rep, err, _ := runImport(t, reg, tr, importer.Options{})
			if !errors.Is(err, importer.ErrIncomplete) || !errors.Is(rep.Problems[0].Err, importer.ErrSourceMissing) {
				t.Fatalf("import: %v, problems %v; want the missing blob reported", err, rep.Problems)
			}
			_, merr := reg.GetManifest(t.Context(), "app", "v1")
			if sparse {
				if len(rep.Problems) != 1 {
					t.Errorf("problems %v, want only the blob", rep.Problems)
				}
				wantManifest(t, reg, "app", "v1", d, body)
			} else if !errors.Is(merr, registry.ErrManifestUnknown) || len(rep.Problems) != 3 {
				t.Errorf("strict: manifest %v, problems %v; want it refused and reported", merr, rep.Problems)
			}
		})
	}
}

func TestImport_VanishedTagsAreReportedAndPrunedOnlyOnRequest(t *testing.T) {
	tr := newTree(t)
	d, _ := tr.image("app", "layer")
	tr.tag("app", "keep", d)
	tr.tag("app", "old", d)
	reg := newService(t, registry.Options{})
	mustImport(t, reg, tr, importer.Options{})
	tr.untag("app", "old")

	rep := mustImport(t, reg, tr, importer.Options{})
	if !slices.Equal(rep.TagsVanished, []string{"app:old"}) || rep.TagsPruned != 0 {
		t.Errorf("vanished %v pruned %d", rep.TagsVanished, rep.TagsPruned)
	}
	if _, err := reg.TagTarget(t.Context(), "app", "old"); err != nil {
		t.Errorf("tag deleted without --prune-tags: %v", err)
	}
	rep = mustImport(t, reg, tr, importer.Options{PruneTags: true, DryRun: true})
	if rep.TagsPruned != 1 {
		t.Errorf("dry run pruned %d, want 1 counted", rep.TagsPruned)
	}
	if _, err := reg.TagTarget(t.Context(), "app", "old"); err != nil {
		t.Errorf("dry run deleted the tag: %v", err)
	}
	rep = mustImport(t, reg, tr, importer.Options{PruneTags: true})
	if rep.TagsPruned != 1 {
		t.Errorf("pruned %d", rep.TagsPruned)
	}
	if _, err := reg.TagTarget(t.Context(), "app", "old"); !errors.Is(err, registry.ErrManifestUnknown) {
		t.Errorf("tag old after prune: %v", err)
	}
	if got, _ := reg.TagTarget(t.Context(), "app", "keep"); got != d {
		t.Errorf("tag keep is %s", got)
	}
}

func TestImport_DryRunVerifiesAndWritesNothing(t *testing.T) {
	tr := newTree(t)
	d, _ := tr.image("app", "fine", "rotten")
	tr.tag("app", "v1", d)
	tr.write(tr.blobPath(digest.FromString("rotten")), []byte("rot"))
	reg := newService(t, registry.Options{})
	rep, err, _ := runImport(t, reg, tr, importer.Options{DryRun: true})
	if !errors.Is(err, importer.ErrIncomplete) || len(rep.Problems) != 1 || !errors.Is(rep.Problems[0].Err, registry.ErrDigestInvalid) {
		t.Fatalf("dry run: %v, problems %v; want the rotten blob found", err, rep.Problems)
	}
	if rep.BlobsImported != 2 || rep.ManifestsImported != 1 || rep.TagsSet != 1 {
		t.Errorf("dry run report %+v", rep)
	}
	if names, _ := reg.Catalog(t.Context(), "", 10); len(names) != 0 {
		t.Errorf("dry run wrote repositories %v", names)
	}
}

func TestOpenSource_AcceptsRootOrV2AndRefusesOther(t *testing.T) {
	tr := newTree(t)
	tr.image("a", "x")
	for _, dir := range []string{tr.root, tr.v2()} {
		src, err := importer.OpenSource(dir)
		if err != nil || src.Root() != tr.v2() {
			t.Errorf("OpenSource(%s) = %v, %v", dir, src, err)
		}
	}
	if _, err := importer.OpenSource(t.TempDir()); err == nil {
		t.Error("an empty directory opened as a source")
	}
}

func TestSource_RepositoriesNestedBesideSpecialDirectories(t *testing.T) {
	tr := newTree(t)
	for _, repo := range []string{"b", "a/b/c", "a/b", "library/x"} {
		tr.image(repo, "l")
	}
	src, err := importer.OpenSource(tr.root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Repositories()
	if want := []string{"a/b", "a/b/c", "b", "library/x"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("repositories %v, %v; want %v", got, err, want)
	}
}

func TestSource_LinkNamingAnotherDigestIsAProblem(t *testing.T) {
	tr := newTree(t)
	d, _ := tr.image("app", "l")
	tr.tag("app", "v1", d)
	other := digest.FromString("other")
	tr.link(tr.v2("repositories", "app", "_layers", "sha256", digest.FromString("l").Encoded(), "link"), other)
	reg := newService(t, registry.Options{})
	rep, err, _ := runImport(t, reg, tr, importer.Options{})
	// The link, then the manifest that needs the blob, then its tag; the
	// rest of the repository still imports.
	if !errors.Is(err, importer.ErrIncomplete) || len(rep.Problems) != 3 || rep.BlobsImported != 1 {
		t.Errorf("import: %v, %+v", err, rep)
	}
}

func TestImport_UnreadableTagIsReportedNeverPruned(t *testing.T) {
	tr := newTree(t)
	d, _ := tr.image("app", "layer")
	tr.tag("app", "v1", d)
	tr.tag("app", "v2", d)
	reg := newService(t, registry.Options{})
	mustImport(t, reg, tr, importer.Options{})
	// As a link caught mid-write by a registry that still runs.
	tr.write(tr.v2("repositories", "app", "_manifests", "tags", "v2", "current", "link"), nil)

	rep, err, _ := runImport(t, reg, tr, importer.Options{PruneTags: true})
	if !errors.Is(err, importer.ErrIncomplete) || len(rep.Problems) != 1 || len(rep.TagsVanished) != 0 || rep.TagsUnchanged != 1 {
		t.Errorf("import: %v, %+v", err, rep)
	}
	if got, err := reg.TagTarget(t.Context(), "app", "v2"); got != d {
		t.Errorf("tag v2 after an unreadable link: %s, %v", got, err)
	}
}
