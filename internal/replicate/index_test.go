package replicate_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
)

// uploadCounter fronts a destination and counts the blob uploads it
// starts, mounts (?from=) apart.
type uploadCounter struct {
	*httptest.Server
	mu              sync.Mutex
	mounts, uploads int
}

func newUploadCounter(t *testing.T, target string) *uploadCounter {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &uploadCounter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
			c.mu.Lock()
			if r.URL.Query().Get("from") != "" {
				c.mounts++
			} else {
				c.uploads++
			}
			c.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *uploadCounter) counts() (mounts, uploads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mounts, c.uploads
}

func TestWorker_MountsAnIndexsPlatformsBlobsFromAnotherRepository(t *testing.T) {
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	front := newUploadCounter(t, dest.URL)
	createRule(t, src, replicate.RuleSpec{URL: front.URL})
	// Two platforms of two layers each.
	base, err := random.Index(512, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, src.Server, "team/a:1"), base); err != nil {
		t.Fatal(err)
	}
	drain(t, src)
	if m, u := front.counts(); m != 0 || u != 6 {
		t.Fatalf("first index: %d mounts and %d uploads, want 6 uploads (two layers and a config per platform)", m, u)
	}

	// The same platforms' layers under other configs, in another
	// repository: a rebuild of the same base for another application.
	im, err := base.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	derived := v1.ImageIndex(empty.Index)
	for _, d := range im.Manifests {
		img, err := base.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Config(img, v1.Config{Cmd: []string{"derived", d.Digest.Hex[:8]}}); err != nil {
			t.Fatal(err)
		}
		derived = mutate.AppendManifests(derived, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: d.Platform}})
	}
	if err := remote.WriteIndex(ref(t, src.Server, "team/b:1"), derived); err != nil {
		t.Fatal(err)
	}
	drain(t, src)
	want, _ := derived.Digest()
	if got, err := digestOf(t, dest.Server, "team/b:1"); err != nil || got != want {
		t.Fatalf("team/b:1 at the destination = %s (%v), want %s", got, err, want)
	}
	if m, u := front.counts(); m != 4 || u != 6+2 {
		t.Errorf("second index: %d mounts and %d uploads, want 4 mounts (the platforms' layers) and 2 uploads (their configs)", m, u-6)
	}
}
