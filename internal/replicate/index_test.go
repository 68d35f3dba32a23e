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
// starts and the cross-repository mounts it grants (201 to a POST with
// ?mount=); a mount it refuses is an upload.
type uploadCounter struct {
	*httptest.Server
	mu              sync.Mutex
	mounts, uploads int
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func newUploadCounter(t *testing.T, target string) *uploadCounter {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &uploadCounter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
			proxy.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		proxy.ServeHTTP(rec, r)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch rec.code {
		case http.StatusCreated:
			c.mounts++
		case http.StatusAccepted:
			c.uploads++
		}
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *uploadCounter) counts() (mounts, uploads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mounts, c.uploads
}

// TestReconcile_MountsAnIndexsPlatformsBlobsFromAnotherRepository: an
// index copied whole (as the reconcile copies what its events did not:
// images pushed before the rule, or while the destination was down)
// mounts its platforms' layers from where this replica put them. (Event
// by event, each platform is a push by digest of its own, copied as an
// image.)
func TestReconcile_MountsAnIndexsPlatformsBlobsFromAnotherRepository(t *testing.T) {
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	front := newUploadCounter(t, dest.URL)
	// Two platforms of two layers each.
	base, err := random.Index(512, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, src.Server, "team/a:1"), base); err != nil {
		t.Fatal(err)
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

	id := createRule(t, src, replicate.RuleSpec{URL: front.URL}) // after the pushes: no events
	if err := src.Replication.ReconcileRule(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	for repo, idx := range map[string]v1.ImageIndex{"team/a:1": base, "team/b:1": derived} {
		want, _ := idx.Digest()
		if got, err := digestOf(t, dest.Server, repo); err != nil || got != want {
			t.Fatalf("%s at the destination = %s (%v), want %s", repo, got, err, want)
		}
	}
	// team/a: two layers and a config per platform, uploaded; team/b: the
	// layers mounted from team/a, the new configs uploaded.
	if m, u := front.counts(); m != 4 || u != 6+2 {
		t.Errorf("%d mounts and %d uploads, want 4 mounts (team/b's platforms' layers) and 8 uploads (team/a's blobs, team/b's configs)", m, u)
	}
}
