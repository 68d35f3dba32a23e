package replicate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
)

// switchable fronts a real registry and answers 503 while down, as a
// destination in an outage does.
type switchable struct {
	*httptest.Server
	down atomic.Bool
}

func newSwitchable(t *testing.T, target string) *switchable {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	s := &switchable{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func ref(t *testing.T, srv *httptest.Server, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func push(t *testing.T, srv *httptest.Server, s string) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, s), img); err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, srv *httptest.Server, s string) (v1.Hash, error) {
	t.Helper()
	d, err := remote.Head(ref(t, srv, s))
	if err != nil {
		return v1.Hash{}, err
	}
	return d.Digest, nil
}

func TestCopier_PushReferrerDeleteAndOutageRepairedByReconcile(t *testing.T) {
	ctx := context.Background()
	src := registrytest.NewServer(t)
	dest := registrytest.NewServer(t)
	front := newSwitchable(t, dest.URL)
	c := &replicate.Copier{Source: replicate.Endpoint{URL: src.URL}, Dest: replicate.Endpoint{URL: front.URL, Prefix: "site-b"}}

	img := push(t, src.Server, "team/app:1.0")
	want, _ := img.Digest()
	// A signature: an artifact whose subject is the image.
	sig, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	mf, _ := img.Manifest()
	size, _ := img.Size()
	sig = mutate.Subject(sig, v1.Descriptor{MediaType: mf.MediaType, Digest: want, Size: size}).(v1.Image)
	sigDigest, _ := sig.Digest()
	if err := remote.Write(ref(t, src.Server, "team/app@"+sigDigest.String()), sig); err != nil {
		t.Fatal(err)
	}

	got, err := c.Copy(ctx, "team/app", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("copied %s, want %s", got, want)
	}
	if d, err := digestOf(t, dest.Server, "site-b/team/app:1.0"); err != nil || d != want {
		t.Fatalf("destination has %s (%v), want %s", d, err, want)
	}
	refs, err := remote.Referrers(ref(t, dest.Server, "site-b/team/app@"+want.String()).Context().Digest(want.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := refs.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != sigDigest {
		t.Errorf("destination referrers %+v, want the signature %s", im.Manifests, sigDigest)
	}

	// A delete replicates as a tag delete; replayed, it is still fine.
	for range 2 {
		if err := c.Delete(ctx, "team/app", "1.0"); err != nil {
			t.Fatal(err)
		}
	}
	var terr *transport.Error
	if _, err := digestOf(t, dest.Server, "site-b/team/app:1.0"); !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Errorf("deleted tag: err = %v, want 404", err)
	}

	// The destination is down while 2.0 is pushed and 1.0 comes back:
	// the event-driven copy fails, the reconcile afterwards repairs it.
	front.down.Store(true)
	img2 := push(t, src.Server, "team/app:2.0")
	if _, err := c.Copy(ctx, "team/app", "2.0"); err == nil {
		t.Fatal("copy to a destination that is down succeeded")
	}
	push(t, dest.Server, "site-b/team/app:stale")
	front.down.Store(false)
	rep, err := c.Reconcile(ctx, "team/app")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Copied)
	if !slices.Equal(rep.Copied, []string{"1.0", "2.0"}) || !slices.Equal(rep.Deleted, []string{"stale"}) || rep.InSync != 0 {
		t.Errorf("reconcile = %+v, want 1.0 and 2.0 copied, stale deleted", rep)
	}
	want2, _ := img2.Digest()
	if d, err := digestOf(t, dest.Server, "site-b/team/app:2.0"); err != nil || d != want2 {
		t.Errorf("after reconcile destination has %s (%v), want %s", d, err, want2)
	}
	if rep, err := c.Reconcile(ctx, "team/app"); err != nil || len(rep.Copied)+len(rep.Deleted) != 0 || rep.InSync != 2 {
		t.Errorf("second reconcile = %+v, %v; want nothing to do", rep, err)
	}
}
