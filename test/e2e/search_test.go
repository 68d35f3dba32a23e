//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestDockerSearch: `docker search registry.local:5000/gallery` with the
// real docker CLI lists the public repositories to anyone and, after
// docker login, the private ones the user may pull, never another
// user's private one.
func TestDockerSearch(t *testing.T) {
	docker := requireDockerEngine(t)
	requireDockerRegistryAddr(t)
	srv := startWharfAuth(t, dockerListen)
	addUser(t, srv, "alice", alicePassword)
	seed := func(repo, user, password, visibility string) {
		t.Helper()
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(dockerListen+"/"+repo+":v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: password})); err != nil {
			t.Fatalf("push %s: %v", repo, err)
		}
		cmd(wharfBin, "visibility", repo, visibility, "--data-dir", srv.DataDir).mustRun(t)
	}
	seed("alice/gallery-public", "alice", alicePassword, "public")
	seed("alice/gallery-private", "alice", alicePassword, "private")
	seed("admin/gallery-secret", "admin", adminPassword, "private")
	seed("alice/unrelated", "alice", alicePassword, "public")

	cfg := t.TempDir()
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.env = []string{"DOCKER_CONFIG=" + cfg}
		c.timeout = dockerTimeout
		return c
	}
	check := func(who string, want, hide []string) {
		t.Helper()
		out := d("search", "--no-trunc", dockerRegistry+"/gallery").mustRun(t)
		t.Logf("docker search as %s:\n%s", who, out)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("docker search as %s lacks %s:\n%s", who, w, out)
			}
		}
		for _, h := range hide {
			if strings.Contains(out, h) {
				t.Errorf("docker search as %s shows %s:\n%s", who, h, out)
			}
		}
	}
	check("anonymous", []string{"alice/gallery-public"}, []string{"alice/gallery-private", "admin/gallery-secret", "alice/unrelated"})

	login := d("login", dockerRegistry, "--username", "alice", "--password-stdin")
	login.stdin = strings.NewReader(alicePassword + "\n")
	login.mustRun(t)
	check("alice", []string{"alice/gallery-public", "alice/gallery-private"}, []string{"admin/gallery-secret", "alice/unrelated"})
}
