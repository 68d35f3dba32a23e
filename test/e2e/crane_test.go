//go:build e2e

package e2e

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// indexPlatforms are the platforms of the test image index.
var indexPlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
	{OS: "linux", Architecture: "arm", Variant: "v7"},
}

// TestCraneRoundTrip pushes a multi-platform image index from an OCI
// layout into wharf with the crane CLI, reads it back every way crane
// can, and checks that every digest survived.
func TestCraneRoundTrip(t *testing.T) {
	crane := requireTool(t, "crane")
	run := func(args ...string) command {
		return cmd(crane, append(args, "--insecure")...)
	}
	srv := startWharf(t)

	idx, children := randomIndex(t)
	wantIndex := mustDigest(t, idx)
	wantRaw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	layoutDir := t.TempDir()
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}

	repo := srv.Addr + "/e2e/multi"
	out := run("push", layoutDir, repo+":v1").mustRun(t)
	if want := repo + "@" + wantIndex.String(); !strings.Contains(out, want) {
		t.Errorf("crane push printed %q, want it to name %s", out, want)
	}

	// Read it back: digest, raw manifest, each platform's child, every blob.
	checkDigest(t, run("digest", repo+":v1"), wantIndex.String())
	if got := run("manifest", repo+":v1").mustRun(t); got != string(wantRaw) {
		t.Errorf("crane manifest returned different bytes:\n got %s\nwant %s", got, wantRaw)
	}
	for _, p := range indexPlatforms {
		checkDigest(t, run("digest", "--platform", p.String(), repo+":v1"), children[p.String()].String())
	}
	if out := run("validate", "--remote", repo+":v1").mustRun(t); !strings.Contains(out, "PASS") {
		t.Errorf("crane validate did not pass: %s", out)
	}

	// Tags.
	run("tag", repo+":v1", "v2").mustRun(t)
	checkTags(t, run("ls", repo), "v1", "v2")
	checkDigest(t, run("digest", repo+":v2"), wantIndex.String())

	// Copy to another repository of the same registry (blobs can be mounted).
	copyRepo := srv.Addr + "/e2e/copy"
	run("copy", repo+":v1", copyRepo+":v1").mustRun(t)
	checkDigest(t, run("digest", copyRepo+":v1"), wantIndex.String())
	for _, p := range indexPlatforms {
		checkDigest(t, run("digest", "--platform", p.String(), copyRepo+":v1"), children[p.String()].String())
	}

	// Pull to a fresh OCI layout and compare it with what was pushed.
	pulled := t.TempDir() + "/pulled"
	run("pull", "--format=oci", repo+":v1", pulled).mustRun(t)
	checkPulledLayout(t, pulled, idx)

	t.Run("sparse index refused by default", func(t *testing.T) {
		// e2e/lonely holds none of the index's children.
		ref, err := name.ParseReference(srv.Addr+"/e2e/lonely:multi", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Put(ref, idx); err == nil {
			t.Errorf("a server without --sparse-manifests accepted an index whose children it lacks")
		} else {
			t.Logf("refused as expected: %v", err)
		}
	})

	t.Run("sparse platform copy", func(t *testing.T) {
		sparse := startWharf(t, "--sparse-manifests")
		dst := sparse.Addr + "/e2e/sparse"
		amd64 := children["linux/amd64"].String()

		// Only the linux/amd64 image travels...
		run("copy", "--platform", "linux/amd64", repo+":v1", dst+":amd64").mustRun(t)
		checkDigest(t, run("digest", dst+":amd64"), amd64)

		// ...then the whole index manifest, without its other children.
		ref, err := name.ParseReference(dst+":multi", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Put(ref, idx); err != nil {
			t.Fatalf("put sparse index to a --sparse-manifests server: %v", err)
		}
		checkDigest(t, run("digest", dst+":multi"), wantIndex.String())
		if got := run("manifest", dst+":multi").mustRun(t); got != string(wantRaw) {
			t.Errorf("sparse index manifest changed:\n got %s\nwant %s", got, wantRaw)
		}
		checkDigest(t, run("digest", "--platform", "linux/amd64", dst+":multi"), amd64)
		missing := children["linux/arm64"].String()
		if out, err := run("manifest", dst+"@"+missing).run(t); err == nil {
			t.Errorf("manifest %s was never pushed to the sparse server, yet it was served: %s", missing, out)
		}
	})
}

// randomIndex builds an OCI image index with one image per indexPlatforms
// entry. The images share a base layer and each has one of its own. It
// returns the index and the digest of each platform's image.
func randomIndex(t *testing.T) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	return randomIndexOf(t, 4096, 2048)
}

// randomIndexOf is randomIndex with a base layer of about baseSize bytes
// and own layers of about ownSize.
func randomIndexOf(t *testing.T, baseSize, ownSize int64) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	base, err := random.Layer(baseSize, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	children := map[string]v1.Hash{}
	for _, p := range indexPlatforms {
		own, err := random.Layer(ownSize, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		img, err = mutate.AppendLayers(img, base, own)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
		children[p.String()] = mustDigest(t, img)
	}
	return idx, children
}

// checkPulledLayout compares the index pulled into an OCI layout at dir
// with want: same index digest and bytes, same children, every image
// valid (blobs present and matching their digests).
func checkPulledLayout(t *testing.T, dir string, want v1.ImageIndex) {
	t.Helper()
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read pulled layout: %v", err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	wantDigest := mustDigest(t, want)
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != wantDigest {
		t.Fatalf("pulled layout index.json lists %+v, want exactly %s", rm.Manifests, wantDigest)
	}
	got, err := root.ImageIndex(wantDigest)
	if err != nil {
		t.Fatal(err)
	}
	gotRaw, _ := got.RawManifest()
	wantRaw, _ := want.RawManifest()
	if !bytes.Equal(gotRaw, wantRaw) {
		t.Errorf("pulled index bytes differ:\n got %s\nwant %s", gotRaw, wantRaw)
	}
	wm, err := want.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range wm.Manifests {
		img, err := got.Image(d.Digest)
		if err != nil {
			t.Errorf("pulled layout lacks %s (%s): %v", d.Digest, d.Platform, err)
			continue
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("pulled image %s (%s) is not valid: %v", d.Digest, d.Platform, err)
		}
	}
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkDigest runs a `crane digest` command and compares its output.
func checkDigest(t *testing.T, c command, want string) {
	t.Helper()
	out, err := c.run(t)
	if err != nil {
		t.Error(err)
		return
	}
	if got := strings.TrimSpace(out); got != want {
		t.Errorf("%s %s = %s, want %s", c.name, strings.Join(c.args, " "), got, want)
	}
}

// checkTags runs a `crane ls` command and compares the tag set.
func checkTags(t *testing.T, c command, want ...string) {
	t.Helper()
	out, err := c.run(t)
	if err != nil {
		t.Error(err)
		return
	}
	got := strings.Fields(out)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
}
