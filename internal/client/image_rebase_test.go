package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf/wharf/internal/client/build"
	"github.com/wharf/wharf/internal/registrytest"
)

// blobTraffic counts how blobs reach a registry: mounts asked for, and
// uploads completed (the PUT that closes an upload session).
type blobTraffic struct {
	mu              sync.Mutex
	mounts, uploads int
}

func (b *blobTraffic) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "/blobs/uploads/") {
		return resp, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case req.Method == http.MethodPost && req.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated:
		b.mounts++
	case req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated:
		b.uploads++
	}
	return resp, nil
}

// appImage is base plus one app layer and a CMD.
func appImage(t *testing.T, base v1.Image) v1.Image {
	t.Helper()
	img, err := mutate.Append(base, mutate.Addendum{Layer: static.NewLayer([]byte("the app"), types.OCILayer),
		History: v1.History{CreatedBy: "COPY app /app"}})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Cmd = []string{"/app"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func digests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range ls {
		d, _ := l.Digest()
		out = append(out, d)
	}
	return out
}

func put(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestImageRebase_RegistryToRegistryMountsLayers(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	old, newer := testImage(t, "base 1.0", 2), testImage(t, "base 1.1", 3)
	app := appImage(t, old)
	put(t, host+"/golden/base:1.0", old)
	put(t, host+"/golden/base:1.1", newer)
	put(t, host+"/apps/web:1", app)

	traffic := &blobTraffic{}
	rem := testRemote(t)
	rem.Transport = traffic
	var out strings.Builder
	err := ImageRebase(ctx, newStore(t), host+"/apps/web:1", RebaseOptions{Remote: rem, Onto: host + "/golden/base:1.1",
		OldBase: host + "/golden/base:1.0", Tag: host + "/apps/web:rebased"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// The new base's three layers are mounted from golden/base; the app's
	// layer is in apps/web already; only the new config is uploaded.
	if traffic.mounts != 3 || traffic.uploads != 1 {
		t.Errorf("%d mounts and %d uploads, want 3 mounts and 1 upload (the config)", traffic.mounts, traffic.uploads)
	}
	r, _ := name.ParseReference(host + "/apps/web:rebased")
	got, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	want := append(digests(t, newer), digests(t, app)[2:]...)
	if !slices.Equal(digests(t, got), want) {
		t.Errorf("rebased layers %v, want %v", digests(t, got), want)
	}
	m, _ := got.Manifest()
	nd, _ := newer.Digest()
	if m.Annotations[build.AnnotationBaseName] != host+"/golden/base:1.1" || m.Annotations[build.AnnotationBaseDigest] != nd.String() {
		t.Errorf("annotations %v", m.Annotations)
	}
	if !strings.Contains(out.String(), "rebased: digest: sha256:") {
		t.Errorf("output %q", out.String())
	}

	// Rebased again onto 1.0 with the old base read from the annotations.
	traffic.mounts, traffic.uploads = 0, 0
	err = ImageRebase(ctx, newStore(t), host+"/apps/web:rebased", RebaseOptions{Remote: rem, Onto: host + "/golden/base:1.0"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	// That is the original image again (its manifest now names its
	// base), and every blob of it is in apps/web already.
	back, _ := remote.Image(r)
	bc, _ := back.ConfigName()
	ac, _ := app.ConfigName()
	if bc != ac || !slices.Equal(digests(t, back), digests(t, app)) {
		t.Errorf("rebased back to config %s, layers %v; want the original's %s, %v", bc, digests(t, back), ac, digests(t, app))
	}
	if traffic.uploads != 0 || traffic.mounts != 0 {
		t.Errorf("rebasing back: %d uploads, %d mounts; want none", traffic.uploads, traffic.mounts)
	}
}

func TestImageRebase_Refusals(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	old, other := testImage(t, "base 1.0", 2), testImage(t, "other", 1)
	put(t, host+"/golden/base:1.0", old)
	put(t, host+"/other/base:1", other)
	put(t, host+"/apps/web:1", appImage(t, other))
	rem := testRemote(t)

	err := ImageRebase(ctx, newStore(t), host+"/apps/web:1", RebaseOptions{Remote: rem, Onto: host + "/golden/base:1.0",
		OldBase: host + "/golden/base:1.0"}, &strings.Builder{})
	if !errors.Is(err, build.ErrNotOnBase) {
		t.Errorf("image on another base: err = %v, want ErrNotOnBase", err)
	}
	err = ImageRebase(ctx, newStore(t), host+"/apps/web:1", RebaseOptions{Remote: rem, Onto: host + "/golden/base:1.0"}, &strings.Builder{})
	if !errors.Is(err, ErrNoBaseAnnotation) || !strings.Contains(err.Error(), "--old-base") {
		t.Errorf("no annotations and no --old-base: err = %v", err)
	}
}

func TestImageRebase_LocalStore(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	old, newer := testImage(t, "base 1.0", 2), testImage(t, "base 1.1", 1)
	localImage(t, st, old, "golden/base:1.0")
	localImage(t, st, newer, "golden/base:1.1")
	dir := buildContext(t, "FROM golden/base:1.0\nCOPY app /app\n", map[string]string{"app": "the app"})
	if err := ImageBuild(ctx, st, dir, BuildOptions{Remote: testRemote(t), Tags: []string{"web:1"}}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	built, _, _ := st.Image(ctx, "web:1")
	// The old base comes from the build's annotations; the local store
	// has everything, so no registry is asked.
	var out strings.Builder
	if err := ImageRebase(ctx, st, "web:1", RebaseOptions{Remote: testRemote(t), Onto: "golden/base:1.1", Tag: "web:2"}, &out); err != nil {
		t.Fatal(err)
	}
	got, _, err := st.Image(ctx, "web:2")
	if err != nil {
		t.Fatal(err)
	}
	if want := append(digests(t, newer), digests(t, built)[2:]...); !slices.Equal(digests(t, got), want) {
		t.Errorf("layers %v, want %v", digests(t, got), want)
	}
	cf, _ := got.ConfigFile()
	if len(cf.RootFS.DiffIDs) != 2 || len(cf.History) != 2 {
		t.Errorf("diff_ids %d, history %d entries", len(cf.RootFS.DiffIDs), len(cf.History))
	}
	m, _ := got.Manifest()
	if m.Annotations[build.AnnotationBaseName] != "docker.io/golden/base:1.1" {
		t.Errorf("annotations %v", m.Annotations)
	}
	if _, d, _ := st.Image(ctx, "web:1"); d == mustDigest(t, got) {
		t.Error("web:1 moved; -t web:2 should leave it")
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
