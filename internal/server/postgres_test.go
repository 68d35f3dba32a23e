package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/servicetest"
)

// Two servers on one PostgreSQL database (and one blob directory) are
// replicas: what is pushed to one is pulled whole from the other, and a
// tag moved on one is seen on the other by the next request.
func TestReplicasOnPostgres_PushToOnePullFromTheOther(t *testing.T) {
	url := servicetest.StartPostgres(t).Database(t)
	blobs := t.TempDir()
	shared := registrytest.WithConfig(func(c *config.Config) {
		c.Database.URL = url
		c.Storage.Filesystem.Root = blobs
	})
	a, b := registrytest.NewServer(t, shared), registrytest.NewServer(t, shared)
	ref := func(srv *registrytest.Server) name.Reference {
		r, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/team/app:v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for round := range 2 { // the second push moves the tag
		img, err := random.Image(2048, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref(a), img); err != nil {
			t.Fatalf("round %d: push to a: %v", round, err)
		}
		want, _ := img.Digest()
		got, err := remote.Image(ref(b))
		if err != nil {
			t.Fatalf("round %d: pull from b: %v", round, err)
		}
		if d, _ := got.Digest(); d != want {
			t.Fatalf("round %d: b serves %s for the tag; a was pushed %s", round, d, want)
		}
		if err := validate.Image(got); err != nil {
			t.Fatalf("round %d: the image pulled from b: %v", round, err)
		}
	}
	resp, err := http.Get(b.URL + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"team/app"`) {
		t.Errorf("b's catalog = %d %s; want team/app", resp.StatusCode, body)
	}
}
