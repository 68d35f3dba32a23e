package client

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
	"github.com/wharf/wharf/internal/registrytest"
)

// multiPlatform is a stored multi-platform index: an image for the host,
// one for another architecture sharing its base layer, and an attestation
// manifest (platform unknown/unknown) as buildx adds them.
type multiPlatform struct {
	index               v1.ImageIndex
	digest              v1.Hash
	host, other, attest v1.Image
	hostP, otherP       v1.Platform
	hostConfig          v1.Hash
	// distinctLayers counts the layers of all platforms, shared ones once.
	distinctLayers int
}

func platformImage(t *testing.T, p v1.Platform, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// storeMultiPlatform writes the index into st and tags it as tag.
func storeMultiPlatform(t *testing.T, st *store.Store, tag string) multiPlatform {
	t.Helper()
	ctx := context.Background()
	m := multiPlatform{hostP: store.HostPlatform()}
	m.otherP = v1.Platform{OS: "linux", Architecture: "arm64"}
	if m.hostP.Architecture == "arm64" {
		m.otherP.Architecture = "amd64"
	}
	base := static.NewLayer([]byte("shared base layer"), types.OCILayer)
	m.host = platformImage(t, m.hostP, base, static.NewLayer([]byte("host app"), types.OCILayer))
	m.other = platformImage(t, m.otherP, base, static.NewLayer([]byte("other app"), types.OCILayer))
	m.attest = platformImage(t, v1.Platform{OS: "unknown", Architecture: "unknown"},
		static.NewLayer([]byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`), types.OCILayer))
	m.distinctLayers = 4 // base, host app, other app, attestation
	unknown := v1.Platform{OS: "unknown", Architecture: "unknown"}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	m.index = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: m.other, Descriptor: v1.Descriptor{Platform: &m.otherP}},
		mutate.IndexAddendum{Add: m.host, Descriptor: v1.Descriptor{Platform: &m.hostP}},
		mutate.IndexAddendum{Add: m.attest, Descriptor: v1.Descriptor{Platform: &unknown}})
	var err error
	if m.digest, err = m.index.Digest(); err != nil {
		t.Fatal(err)
	}
	m.hostConfig, _ = m.host.ConfigName()
	if err := st.WriteIndex(ctx, m.index); err != nil {
		t.Fatal(err)
	}
	named, err := ref.Parse(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(ctx, named, m.digest); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestImageSave_IndexKeepsEveryPlatform(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	m := storeMultiPlatform(t, st, "gallery/multi:1")

	var buf bytes.Buffer
	if err := ImageSave(ctx, st, []string{"gallery/multi:1"}, &buf); err != nil {
		t.Fatal(err)
	}
	files := tarFiles(t, buf.Bytes())

	// index.json names the index itself, tagged.
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != m.digest || !index.Manifests[0].MediaType.IsIndex() ||
		index.Manifests[0].Annotations[annotationContainerdName] != "docker.io/gallery/multi:1" {
		t.Errorf("index.json = %s, want the index %s tagged docker.io/gallery/multi:1", files["index.json"], m.digest)
	}
	// Every manifest, config and layer of every platform is in blobs/.
	want := []v1.Hash{m.digest}
	for _, img := range []v1.Image{m.host, m.other, m.attest} {
		d, _ := img.Digest()
		c, _ := img.ConfigName()
		want = append(want, d, c)
		layers, _ := img.Layers()
		for _, l := range layers {
			ld, _ := l.Digest()
			want = append(want, ld)
		}
	}
	for _, h := range want {
		if _, ok := files["blobs/sha256/"+h.Hex]; !ok {
			t.Errorf("archive lacks blob %s", h)
		}
	}
	// manifest.json (for engines that read only it) names the host's image.
	var ms []dockerManifest
	if err := json.Unmarshal(files["manifest.json"], &ms); err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Config != "blobs/sha256/"+m.hostConfig.Hex || len(ms[0].Layers) != 2 ||
		len(ms[0].RepoTags) != 1 || ms[0].RepoTags[0] != "gallery/multi:1" {
		t.Errorf("manifest.json = %s, want the host image (config %s) tagged gallery/multi:1", files["manifest.json"], m.hostConfig)
	}

	// Loading it back gives the same index, every platform.
	fresh := newStore(t)
	var out bytes.Buffer
	if err := ImageLoad(ctx, fresh, bytes.NewReader(buf.Bytes()), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Loaded image: gallery/multi:1\n" {
		t.Errorf("load printed %q", out.String())
	}
	desc, err := fresh.Resolve(ctx, "gallery/multi:1")
	if err != nil || desc.Digest != m.digest {
		t.Fatalf("loaded tag points at %v (%v), want the index %s", desc.Digest, err, m.digest)
	}
	ii, err := fresh.ImageIndex(ctx, m.digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(ii, validate.Fast); err != nil {
		t.Errorf("loaded index is not complete: %v", err)
	}
}

func TestPush_IndexPushesEveryPlatform(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	tag := host + "/gallery/multi:1"
	m := storeMultiPlatform(t, st, tag)
	raw, _ := m.index.RawManifest()

	var out bytes.Buffer
	if err := Push(ctx, st, tag, PushOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), ": Pushed\n"); n != m.distinctLayers {
		t.Errorf("push: %d layers Pushed, want %d (each distinct layer of every platform once):\n%s", n, m.distinctLayers, out.String())
	}
	if !strings.HasSuffix(out.String(), "1: digest: "+m.digest.String()+" size: "+strconv.Itoa(len(raw))+"\n") {
		t.Errorf("push did not end with the index digest %s:\n%s", m.digest, out.String())
	}

	// The registry holds the whole index, every blob of every platform.
	nr, _ := name.ParseReference(tag)
	desc, err := remote.Get(nr)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != m.digest || !desc.MediaType.IsIndex() {
		t.Fatalf("registry has %s (%s), want the index %s", desc.Digest, desc.MediaType, m.digest)
	}
	ii, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(ii, validate.Fast); err != nil {
		t.Errorf("pushed index is not complete: %v", err)
	}

	// Again: nothing to send.
	out.Reset()
	if err := Push(ctx, st, tag, PushOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), ": Layer already exists\n"); n != m.distinctLayers || strings.Contains(out.String(), "Pushed") {
		t.Errorf("second push:\n%s", out.String())
	}

	// Each platform pulls back as pushed.
	for _, c := range []struct {
		platform v1.Platform
		img      v1.Image
	}{{m.hostP, m.host}, {m.otherP, m.other}} {
		fresh := newStore(t)
		if err := Pull(ctx, fresh, tag, PullOptions{Remote: r, Platform: c.platform.String()}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		want, _ := c.img.Digest()
		if _, got, err := fresh.Image(ctx, tag); err != nil || got != want {
			t.Errorf("pull --platform %s stored %s (%v), want %s", c.platform, got, err, want)
		}
	}
}
