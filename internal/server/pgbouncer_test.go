package server_test

import (
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

// A server whose database sits behind PgBouncer in transaction mode takes
// pushes and serves pulls: with several images pushed at once, its pool's
// connections outnumber the bouncer's server connections, so statements
// of one client connection land on different server connections.
func TestServerBehindPgBouncer_PushAndPull(t *testing.T) {
	url := servicetest.StartPgBouncer(t).Database(t)
	srv := registrytest.NewServer(t, registrytest.WithConfig(func(c *config.Config) {
		c.Database.URL = url
	}))
	host := strings.TrimPrefix(srv.URL, "http://")
	const images = 6
	errs := make(chan error, images)
	digests := make([]string, images)
	for i := range images {
		img, err := random.Image(4096, 3)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests[i] = d.String()
		ref, err := name.ParseReference(host+"/team/app"+string(rune('a'+i))+":v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		go func() { errs <- remote.Write(ref, img) }()
	}
	for range images {
		if err := <-errs; err != nil {
			t.Errorf("push: %v", err)
		}
	}
	if t.Failed() {
		return
	}
	for i := range images {
		ref, _ := name.ParseReference(host+"/team/app"+string(rune('a'+i))+":v1", name.Insecure)
		got, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if d, _ := got.Digest(); d.String() != digests[i] {
			t.Fatalf("%s serves %s; %s was pushed", ref, d, digests[i])
		}
		if err := validate.Image(got); err != nil {
			t.Fatalf("the image pulled from %s: %v", ref, err)
		}
	}
}
