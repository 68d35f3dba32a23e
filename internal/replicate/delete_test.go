package replicate_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
)

// deleteRepository deletes repo from srv as the Hub API's clients do.
func deleteRepository(t *testing.T, srv *registrytest.Server, repo string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, srv.URL+"/v2/repositories/"+repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE /v2/repositories/%s: %s, want 202", repo, resp.Status)
	}
}

// sign pushes a signature of img to repo by digest, as cosign does.
func sign(t *testing.T, srv *httptest.Server, repo string, img v1.Image) v1.Hash {
	t.Helper()
	subject, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sig := mutate.Subject(mutate.ConfigMediaType(empty.Image, types.MediaType("application/vnd.dev.cosign.artifact.sig.v1+json")),
		v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subject, Size: mustSize(t, img)}).(v1.Image)
	d, err := sig.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, repo+"@"+d.String()), sig); err != nil {
		t.Fatal(err)
	}
	return d
}

func drain(t *testing.T, src *registrytest.Server) {
	t.Helper()
	for due(t, src) > 0 {
	}
}

func TestWorker_ADeletedRepositoryIsDeletedAtTheDestination(t *testing.T) {
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	id := createRule(t, src, replicate.RuleSpec{URL: dest.URL})
	one := push(t, src.Server, "team/app:1")
	if err := remote.Tag(ref(t, src.Server, "team/app:latest").(name.Tag), one); err != nil {
		t.Fatal(err)
	}
	two := push(t, src.Server, "team/app:2")
	sig := sign(t, src.Server, "team/app", one)
	keep := push(t, src.Server, "team/keep:1")
	drain(t, src)
	wantDigest(t, dest.Server, "team/app:latest", one)
	wantDigest(t, dest.Server, "team/app:2", two)

	deleteRepository(t, src, "team/app")
	if n := due(t, src); n != 1 {
		t.Fatalf("the repository's delete made %d tasks, want 1", n)
	}
	for _, img := range []v1.Image{one, two} {
		d, _ := img.Digest()
		if _, err := digestOf(t, dest.Server, "team/app@"+d.String()); err == nil {
			t.Errorf("team/app@%s survived its repository's delete at the destination", d)
		}
	}
	if _, err := digestOf(t, dest.Server, "team/app@"+sig.String()); err == nil {
		t.Error("the signature survived its repository's delete at the destination")
	}
	if tags, err := remote.List(ref(t, dest.Server, "team/app:1").Context()); err == nil && len(tags) != 0 {
		t.Errorf("tags left at the destination: %q", tags)
	}
	wantDigest(t, dest.Server, "team/keep:1", keep)
	if r := rule(t, src, id); r.Pending != 0 || r.LastError != "" || r.Failures != 0 {
		t.Errorf("status = %+v, want all done and well", r)
	}

	// Replayed (a retry after a lapsed claim): what is gone is done.
	if err := (&replicate.Copier{Source: replicate.Endpoint{URL: src.URL}, Dest: replicate.Endpoint{URL: dest.URL}}).
		DeleteRepository(t.Context(), "team/app"); err != nil {
		t.Errorf("deleting the repository again: %v", err)
	}
}

// TestWorker_ARepositoryDeleteTheDestinationRefusesFailsOnceWithItsReason:
// a destination that refuses deletes (the reference registry unless
// configured otherwise) is reported, not retried forever.
func TestWorker_ARepositoryDeleteTheDestinationRefusesFailsOnceWithItsReason(t *testing.T) {
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	target, _ := url.Parse(dest.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	id := createRule(t, src, replicate.RuleSpec{URL: front.URL})
	img := push(t, src.Server, "team/app:1")
	drain(t, src)

	deleteRepository(t, src, "team/app")
	if n := due(t, src); n != 1 {
		t.Fatalf("the repository's delete made %d tasks, want 1", n)
	}
	r := rule(t, src, id)
	if r.Pending != 0 || r.Failures != 1 || !strings.Contains(r.LastError, "does not allow deletes") {
		t.Errorf("status = %+v, want the delete given up at once, its reason shown", r)
	}
	if n := due(t, src); n != 0 {
		t.Errorf("%d tasks retried", n)
	}
	wantDigest(t, dest.Server, "team/app:1", img)
}
