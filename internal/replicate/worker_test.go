package replicate_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
	"github.com/wharf/wharf/internal/servicetest"
)

// due runs one round of src's worker and returns how many tasks it took.
func due(t *testing.T, src *registrytest.Server) int {
	t.Helper()
	n, err := src.Replication.ReplicateDue(t.Context())
	if err != nil {
		t.Fatalf("ReplicateDue: %v", err)
	}
	return n
}

func rule(t *testing.T, src *registrytest.Server, id int64) *replicate.Rule {
	t.Helper()
	r, err := src.Replication.Rule(t.Context(), "team", id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func createRule(t *testing.T, src *registrytest.Server, spec replicate.RuleSpec) int64 {
	t.Helper()
	id, err := src.Replication.CreateRule(t.Context(), "team", spec, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func wantDigest(t *testing.T, srv *httptest.Server, ref string, want v1.Image) {
	t.Helper()
	w, _ := want.Digest()
	if got, err := digestOf(t, srv, ref); err != nil || got != w {
		t.Fatalf("%s at the destination = %s (%v), want %s", ref, got, err, w)
	}
}

func TestWorker_ReplicatesEachRepositorysEventsInOrder(t *testing.T) {
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	id := createRule(t, src, replicate.RuleSpec{URL: dest.URL})
	first := push(t, src.Server, "team/app:1")
	second := push(t, src.Server, "team/app:1") // the tag moves
	lib := push(t, src.Server, "team/lib:1")
	push(t, src.Server, "other/app:1") // not the rule's namespace

	// One task per repository at a time: app's move waits for its push.
	if n := due(t, src); n != 2 {
		t.Fatalf("first round took %d tasks, want 2 (team/app's first push, team/lib)", n)
	}
	wantDigest(t, dest.Server, "team/app:1", first)
	wantDigest(t, dest.Server, "team/lib:1", lib)
	if n := due(t, src); n != 1 {
		t.Fatalf("second round took %d tasks, want team/app's move", n)
	}
	wantDigest(t, dest.Server, "team/app:1", second)
	if _, err := digestOf(t, dest.Server, "other/app:1"); err == nil {
		t.Error("other/app was replicated by a rule of team")
	}

	// A signature pushed by digest follows its image.
	subject, _ := second.Digest()
	sig := mutate.Subject(mutate.ConfigMediaType(empty.Image, types.MediaType("application/vnd.dev.cosign.artifact.sig.v1+json")),
		v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subject, Size: mustSize(t, second)}).(v1.Image)
	sigDigest, _ := sig.Digest()
	if err := remote.Write(ref(t, src.Server, "team/app@"+sigDigest.String()), sig); err != nil {
		t.Fatal(err)
	}
	if n := due(t, src); n != 1 {
		t.Fatalf("the signature made %d tasks, want 1", n)
	}
	refs, err := remote.Referrers(ref(t, dest.Server, "team/app@"+subject.String()).Context().Digest(subject.String()))
	if err != nil {
		t.Fatal(err)
	}
	if im, _ := refs.IndexManifest(); len(im.Manifests) != 1 || im.Manifests[0].Digest != sigDigest {
		t.Fatalf("referrers at the destination = %+v, want the signature %s", im, sigDigest)
	}

	// A deleted tag is deleted at the destination.
	if err := remote.Delete(ref(t, src.Server, "team/lib:1")); err != nil {
		t.Fatal(err)
	}
	if n := due(t, src); n != 1 {
		t.Fatalf("the delete made %d tasks, want 1", n)
	}
	if _, err := digestOf(t, dest.Server, "team/lib:1"); err == nil {
		t.Error("team/lib:1 survived its delete at the destination")
	}
	if n := due(t, src); n != 0 {
		t.Errorf("%d tasks left", n)
	}
	if r := rule(t, src, id); r.Pending != 0 || r.LastOK.IsZero() || r.LastError != "" || r.Failures != 0 || r.SealedPassword != "" {
		t.Errorf("status = %+v, want all done and well", r)
	}
}

func mustSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	n, err := img.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWorker_RetriesWithDoublingBackoffUntilTheDestinationIsBack(t *testing.T) {
	clock := clocktest.New()
	src, dest := registrytest.NewServer(t, registrytest.WithClock(clock.Now)), registrytest.NewServer(t)
	front := newSwitchable(t, dest.URL)
	id := createRule(t, src, replicate.RuleSpec{URL: front.URL})
	front.down.Store(true)
	pushed := clock.Now()
	img := push(t, src.Server, "team/app:1")
	backoff := src.Config.Replication.Backoff

	if n := due(t, src); n != 1 {
		t.Fatalf("first attempt took %d tasks, want 1", n)
	}
	r := rule(t, src, id)
	if r.LastError == "" || r.Failures != 1 || r.Pending != 1 || !r.Oldest.Equal(pushed) {
		t.Fatalf("status after a failure = %+v, want its reason, 1 failure, 1 pending since %v", r, pushed)
	}
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{
		{0, 0},
		{backoff - time.Second, 0},
		{time.Second, 1}, // the first retry, after backoff: fails again
		{2*backoff - time.Second, 0},
	} {
		clock.Advance(step.advance)
		if n := due(t, src); n != step.want {
			t.Fatalf("at +%v: %d tasks due, want %d", clock.Now().Sub(pushed), n, step.want)
		}
	}
	front.down.Store(false)
	clock.Advance(time.Second) // the second retry, 2×backoff after the first
	if n := due(t, src); n != 1 {
		t.Fatalf("second retry took %d tasks, want 1", n)
	}
	wantDigest(t, dest.Server, "team/app:1", img)
	if r := rule(t, src, id); r.Pending != 0 || r.LastError != "" || r.Failures != 2 || !r.LastOK.Equal(clock.Now()) {
		t.Errorf("status after catching up = %+v", r)
	}
}

func TestWorker_GivesUpAfterMaxAttemptsAndTheReconcileRepairs(t *testing.T) {
	clock := clocktest.New()
	src := registrytest.NewServer(t, registrytest.WithClock(clock.Now),
		registrytest.WithConfig(func(c *config.Config) { c.Replication.MaxAttempts = 2 }))
	dest := registrytest.NewServer(t)
	front := newSwitchable(t, dest.URL)
	id := createRule(t, src, replicate.RuleSpec{URL: front.URL})
	front.down.Store(true)
	img := push(t, src.Server, "team/app:1")
	due(t, src)
	clock.Advance(src.Config.Replication.Backoff)
	if n := due(t, src); n != 1 {
		t.Fatalf("retry took %d tasks, want 1", n)
	}
	if r := rule(t, src, id); r.Pending != 0 || r.Failures != 2 || r.LastError == "" {
		t.Fatalf("status after giving up = %+v, want nothing pending, 2 failures and the reason", r)
	}
	front.down.Store(false)
	if err := src.Replication.ReconcileRule(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	wantDigest(t, dest.Server, "team/app:1", img)
	if r := rule(t, src, id); r.LastError != "" {
		t.Errorf("status after the reconcile = %+v", r)
	}
}

func TestWorker_MountsBlobsFromAnotherRepositoryAtTheDestination(t *testing.T) {
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	var mu sync.Mutex
	var mounts, uploads int
	target, _ := url.Parse(dest.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
			mu.Lock()
			if r.URL.Query().Get("from") != "" {
				mounts++
			} else {
				uploads++
			}
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	createRule(t, src, replicate.RuleSpec{URL: front.URL})
	base, err := random.Image(512, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, src.Server, "team/a:1"), base); err != nil {
		t.Fatal(err)
	}
	due(t, src)
	mu.Lock()
	firstUploads := uploads
	mu.Unlock()
	if firstUploads != 4 { // three layers and the config
		t.Fatalf("first image: %d uploads, want 4", firstUploads)
	}
	// The same layers under another config, in another repository.
	derived, err := mutate.Config(base, v1.Config{Cmd: []string{"derived"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, src.Server, "team/b:1"), derived); err != nil {
		t.Fatal(err)
	}
	due(t, src)
	wantDigest(t, dest.Server, "team/b:1", derived)
	mu.Lock()
	defer mu.Unlock()
	if mounts != 3 || uploads != firstUploads+1 {
		t.Errorf("second image: %d mounts and %d uploads, want 3 mounts (its layers) and 1 upload (its config)", mounts, uploads-firstUploads)
	}
}

func TestWorker_TwoReplicasOnOnePostgresApplyEachEventOnce(t *testing.T) {
	dbURL := servicetest.StartPostgres(t).Database(t)
	blobs := t.TempDir()
	shared := registrytest.WithConfig(func(c *config.Config) { c.Database.URL, c.Storage.URL = dbURL, blobs })
	a, b := registrytest.NewServer(t, shared), registrytest.NewServer(t, shared)
	dest := registrytest.NewServer(t)
	var mu sync.Mutex
	manifestCalls := map[string]int{}
	target, _ := url.Parse(dest.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/manifests/1") && (r.Method == http.MethodPut || r.Method == http.MethodHead) {
			mu.Lock()
			manifestCalls[r.Method+" "+r.URL.Path]++
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	id := createRule(t, a, replicate.RuleSpec{URL: front.URL})
	// More than one round's batch, so that the replicas claim at once.
	const repos = 40
	for i := range repos {
		a.PushRandom(t, fmt.Sprint("team/r", i), "1")
	}

	var wg sync.WaitGroup
	for _, replica := range []*registrytest.Server{a, b} {
		wg.Go(func() {
			for {
				if _, err := replica.Replication.ReplicateDue(t.Context()); err != nil {
					t.Error(err)
					return
				}
				r, err := replica.Replication.Rule(t.Context(), "team", id)
				if err != nil || r.Pending == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i := range repos {
		for _, method := range []string{"HEAD", "PUT"} {
			if k := fmt.Sprintf("%s /v2/team/r%d/manifests/1", method, i); manifestCalls[k] != 1 {
				t.Errorf("%s: %d times, want once", k, manifestCalls[k])
			}
		}
	}
}
