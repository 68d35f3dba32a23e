package client

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
	"github.com/wharf/wharf/internal/registrytest"
)

// updateRemoteGolden reports whether -update was given; the flag itself is
// declared once for the package, in image_local_test.go.
func updateRemoteGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// goldenHost compares got, with the server's host:port replaced by HOST,
// with testdata/NAME.golden.
func goldenHost(t *testing.T, name, host, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, host, "HOST")
	path := filepath.Join("testdata", name+".golden")
	if updateRemoteGolden() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

// testImage is a deterministic image with n small layers.
func testImage(t *testing.T, seed string, n int) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var layers []v1.Layer
	for i := range n {
		layers = append(layers, static.NewLayer([]byte(seed+" layer "+string(rune('a'+i))), types.OCILayer))
	}
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	p := store.HostPlatform()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// localImage stores img under tag in st.
func localImage(t *testing.T, st *store.Store, img v1.Image, tag string) v1.Hash {
	t.Helper()
	ctx := context.Background()
	if err := st.WriteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	named, err := ref.Parse(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(ctx, named, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testRemote(t *testing.T) Remote {
	return Remote{DockerConfig: t.TempDir(), Home: t.TempDir()}
}

func TestPushPull_Golden(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	img := testImage(t, "gallery", 7) // more than 5 layers: some wait
	want := localImage(t, st, img, host+"/gallery/ui:v1")

	var out bytes.Buffer
	if err := Push(ctx, st, host+"/gallery/ui:v1", PushOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	goldenHost(t, "push_first", host, out.String())

	out.Reset()
	if err := Push(ctx, st, host+"/gallery/ui:v1", PushOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	goldenHost(t, "push_again", host, out.String())

	// The registry holds exactly what was pushed.
	nr, _ := name.ParseReference(host + "/gallery/ui:v1")
	desc, err := remote.Head(nr)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Errorf("registry has %s, want %s", desc.Digest, want)
	}

	// Pull into a fresh store.
	fresh := newStore(t)
	out.Reset()
	if err := Pull(ctx, fresh, host+"/gallery/ui:v1", PullOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	goldenHost(t, "pull_first", host, out.String())
	_, got, err := fresh.Image(ctx, host+"/gallery/ui:v1")
	if err != nil || got != want {
		t.Errorf("pulled image %s (%v), want %s", got, err, want)
	}

	out.Reset()
	if err := Pull(ctx, fresh, host+"/gallery/ui:v1", PullOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	goldenHost(t, "pull_again", host, out.String())
}

func TestPush_MountsFromOriginRepository(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	img := testImage(t, "mount", 2)
	d := localImage(t, st, img, host+"/team/base:1")
	if err := Push(ctx, st, host+"/team/base:1", PushOptions{Remote: r}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	named, _ := ref.Parse(host + "/other/app:1")
	if err := st.Tag(ctx, named, d); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Push(ctx, st, host+"/other/app:1", PushOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), ": Mounted from team/base\n"); n != 2 {
		t.Errorf("want 2 layers mounted from team/base:\n%s", out.String())
	}
}

func TestPush_AllTags(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	img := testImage(t, "tags", 1)
	d := localImage(t, st, img, host+"/acct/app:latest")
	for _, tg := range []string{"2", "2.1", "2.1.106"} {
		named, _ := ref.Parse(host + "/acct/app:" + tg)
		if err := st.Tag(ctx, named, d); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := Push(ctx, st, host+"/acct/app", PushOptions{Remote: r, AllTags: true}, &out); err != nil {
		t.Fatal(err)
	}
	goldenHost(t, "push_all_tags", host, out.String())

	out.Reset()
	if err := RepoTags(ctx, host+"/acct/app", RepoTagsOptions{Remote: r, Format: "{{.Reference}}"}, &out); err != nil {
		t.Fatal(err)
	}
	goldenHost(t, "repo_tags", host, out.String())
}

func TestPull_MultiPlatformIndex(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	amd := testImage(t, "amd", 1)
	arm := testImage(t, "arm", 1)
	cf, _ := arm.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	if p := store.HostPlatform(); p.Architecture == "arm64" {
		cf.Architecture = "amd64"
	}
	other, _ := mutate.ConfigFile(arm, cf)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	host0 := store.HostPlatform()
	otherP := v1.Platform{OS: "linux", Architecture: cf.Architecture}
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &host0}},
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &otherP}})
	nr, _ := name.ParseReference(host + "/multi/img:1")
	if err := remote.WriteIndex(nr, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()

	st := newStore(t)
	var out bytes.Buffer
	if err := Pull(ctx, st, host+"/multi/img:1", PullOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Digest: "+idxDigest.String()+"\n") {
		t.Errorf("pull did not print the index digest:\n%s", out.String())
	}
	_, got, err := st.Image(ctx, host+"/multi/img:1")
	wantHost, _ := amd.Digest()
	if err != nil || got != wantHost {
		t.Errorf("host platform pull stored %s (%v), want %s", got, err, wantHost)
	}
	checkPulledThroughIndex(t, st, r, host, idxDigest, wantHost)

	st2 := newStore(t)
	if err := Pull(ctx, st2, host+"/multi/img:1", PullOptions{Remote: r, Platform: otherP.String()}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	_, got, _ = st2.Image(ctx, host+"/multi/img:1")
	if wantOther, _ := other.Digest(); got != wantOther {
		t.Errorf("--platform %s stored %s, want %s", otherP, got, wantOther)
	}

	err = Pull(ctx, newStore(t), host+"/multi/img:1", PullOptions{Remote: r, Platform: "windows/s390x"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no matching manifest") {
		t.Errorf("unknown platform: err = %v", err)
	}

	// cp keeps the whole index.
	out.Reset()
	if err := Copy(ctx, host+"/multi/img:1", host+"/multi/copy", CopyOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	cr, _ := name.ParseReference(host + "/multi/copy:1")
	desc, err := remote.Head(cr)
	if err != nil || desc.Digest != idxDigest {
		t.Errorf("copy has %v (%v), want index %s", desc, err, idxDigest)
	}
	out.Reset()
	if err := RepoList(ctx, host, RepoListOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "multi/copy\nmulti/img\nmulti/mine\n" {
		t.Errorf("repo ls = %q", out.String())
	}
	out.Reset()
	if err := RepoRemove(ctx, host+"/multi/copy:1", RepoRemoveOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Untagged: "+host+"/multi/copy:1\n" {
		t.Errorf("repo rm printed %q", out.String())
	}
	if _, err := remote.Head(cr); err == nil {
		t.Errorf("tag still there after repo rm")
	}
}

func TestErrors_ArePlain(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	img := testImage(t, "errs", 1)
	nr, _ := name.ParseReference(host + "/some/repo:1")
	if err := remote.Write(nr, img); err != nil {
		t.Fatal(err)
	}

	err := Pull(ctx, newStore(t), host+"/some/repo:nope", PullOptions{Remote: r}, &bytes.Buffer{})
	if !errors.Is(err, ErrManifestUnknown) {
		t.Errorf("unknown tag: %v", err)
	}
	err = Pull(ctx, newStore(t), host+"/no/such:1", PullOptions{Remote: r}, &bytes.Buffer{})
	if !errors.Is(err, ErrNameUnknown) && !errors.Is(err, ErrManifestUnknown) {
		t.Errorf("unknown repository: %v", err)
	}
	err = Push(ctx, newStore(t), host+"/some/repo:1", PushOptions{Remote: r}, &bytes.Buffer{})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("push of a missing image: %v", err)
	}

	// Nothing listens on a closed port.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	err = Pull(ctx, newStore(t), dead+"/x:1", PullOptions{Remote: r}, &bytes.Buffer{})
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v", err)
	}

	// A non-loopback name that serves plain HTTP: refused, with how to allow it.
	rr := r
	rr.Transport = dialTo(srv.Listener.Addr().String())
	err = Pull(ctx, newStore(t), "registry.example:5000/some/repo:1", PullOptions{Remote: rr}, &bytes.Buffer{})
	if !errors.Is(err, ErrHTTPRegistry) || !strings.Contains(err.Error(), "insecure-registries") {
		t.Errorf("HTTP registry: %v", err)
	}
	// ...and allowed by insecure-registries.
	if err := os.WriteFile(filepath.Join(rr.Home, "config.json"), []byte(`{"insecure-registries":["registry.example:5000"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Pull(ctx, newStore(t), "registry.example:5000/some/repo:1", PullOptions{Remote: rr}, &bytes.Buffer{}); err != nil {
		t.Errorf("insecure-registries did not allow it: %v", err)
	}
}

// dialTo is a transport that connects every request to addr.
func dialTo(addr string) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{}
	t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return t
}

// checkPulledThroughIndex holds what docker keeps after pulling one platform
// of host/multi/img:1 (index idx, platform manifest plat): the repository
// digest is the index's, the index manifest is kept, the name@index
// reference resolves, a push sends the one platform and says so, and rmi
// drops the index with the image.
func checkPulledThroughIndex(t *testing.T, st *store.Store, r Remote, host string, idx, plat v1.Hash) {
	t.Helper()
	ctx := context.Background()
	img, _, err := st.Image(ctx, host+"/multi/img:1")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	_, digests, err := st.RepoTags(ctx, id)
	if want := host + "/multi/img@" + idx.String(); err != nil || len(digests) != 1 || digests[0] != want {
		t.Errorf("RepoDigests = %v (%v), want [%s] (the index, as docker reports it)", digests, err, want)
	}
	if !st.HasBlob(idx) {
		t.Errorf("the index manifest %s is not kept in the layout", idx)
	}
	var out bytes.Buffer
	if err := ImageList(ctx, st, ListOptions{Format: "{{.Digest}}"}, &out); err != nil || out.String() != idx.String()+"\n" {
		t.Errorf("ls --digests shows %q (%v), want the index digest", out.String(), err)
	}
	out.Reset()
	if err := Pull(ctx, st, host+"/multi/img@"+idx.String(), PullOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Status: Image is up to date for "+host+"/multi/img@"+idx.String()) {
		t.Errorf("pull by the index digest again:\n%s", out.String())
	}

	// Pushing it elsewhere pushes the one platform, with docker's note.
	tag := host + "/multi/mine:1"
	named, _ := ref.Parse(tag)
	if err := st.Tag(ctx, named, plat); err != nil {
		t.Fatal(err)
	}
	var notes bytes.Buffer
	out.Reset()
	if err := Push(ctx, st, tag, PushOptions{Remote: r, Notes: &notes}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1: digest: "+plat.String()+" size: ") {
		t.Errorf("push did not push the platform manifest %s:\n%s", plat, out.String())
	}
	wantNote := "\n Info -> Not all multiplatform-content is present and only the available single-platform image was pushed\n" +
		"         " + idx.String() + " -> " + plat.String() + "\n"
	if notes.String() != wantNote {
		t.Errorf("push notes %q, want %q", notes.String(), wantNote)
	}

	out.Reset()
	if err := ImageRemove(ctx, st, []string{host + "/multi/img:1", tag}, RemoveOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Untagged: " + host + "/multi/img@" + idx.String(), "Deleted: " + id.String()} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("rmi output lacks %q:\n%s", want, out.String())
		}
	}
	if st.HasBlob(idx) {
		t.Errorf("rmi left the index manifest behind")
	}
}
