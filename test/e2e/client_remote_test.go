//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/client/auth"
)

// pullDigestLine is the "Digest: sha256:…" line of a pull.
var pullDigestLine = regexp.MustCompile(`(?m)^Digest: (sha256:[0-9a-f]{64})\s*$`)

// wharfClient runs the wharf client with its own image store and docker
// config directory.
type wharfClient struct {
	home, dockerConfig string
}

func newWharfClient(t *testing.T) wharfClient {
	return wharfClient{home: t.TempDir(), dockerConfig: t.TempDir()}
}

func (c wharfClient) cmd(args ...string) command {
	x := cmd(wharfBin, args...)
	x.env = []string{"WHARF_HOME=" + c.home, "DOCKER_CONFIG=" + c.dockerConfig}
	return x
}

// pulledDigest returns the Digest: line of a pull's output.
func pulledDigest(t *testing.T, out string) string {
	t.Helper()
	m := pullDigestLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("pull printed no Digest: line:\n%s", out)
	}
	return m[1]
}

// TestClientRemote walks through the tutorial with the wharf client
// against a real `wharf serve`: import an image, log in, tag it under an
// account name, push, push again, push more tags, pull into a fresh store.
// It also checks that crane and wharf read each other's logins.
func TestClientRemote(t *testing.T) {
	crane := requireTool(t, "crane")
	busybox := requireStaticBusybox(t)
	srv := startWharf(t)
	host := srv.Addr
	w := newWharfClient(t)

	// A local image, as `docker import` would make it.
	imp := w.cmd("import", "-", "image-gallery")
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)

	// Login (the server runs without auth: any credentials pass the
	// /v2/ check), and crane reads what wharf wrote.
	login := w.cmd("login", host, "-u", "alice", "--password-stdin")
	login.stdin = strings.NewReader("wonderland\n")
	if out := login.mustRun(t); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("login printed %q", out)
	}
	cauth := cmd(crane, "auth", "get", host)
	cauth.env = []string{"DOCKER_CONFIG=" + w.dockerConfig}
	if out := cauth.mustRun(t); !strings.Contains(out, `"Username":"alice"`) || !strings.Contains(out, `"Secret":"wonderland"`) {
		t.Errorf("crane auth get read %q", out)
	}
	if fi, err := os.Stat(filepath.Join(w.dockerConfig, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json: %v, mode %v", err, fi.Mode().Perm())
	}
	// ...and wharf reads what crane wrote.
	craneCfg := t.TempDir()
	clogin := cmd(crane, "auth", "login", "other.example:5000", "-u", "bob", "-p", "builder")
	clogin.env = []string{"DOCKER_CONFIG=" + craneCfg}
	clogin.mustRun(t)
	f, err := auth.Load(craneCfg)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.Get(context.Background(), "other.example:5000"); err != nil || c.Username != "bob" || c.Password != "builder" {
		t.Errorf("wharf read crane's login as %+v, %v", c, err)
	}

	// Tag under an account name and push.
	repo := host + "/alice/image-gallery"
	w.cmd("tag", "image-gallery", repo+":v1").mustRun(t)
	out := w.cmd("push", repo+":v1").mustRun(t)
	if !strings.Contains(out, "The push refers to repository ["+repo+"]") {
		t.Errorf("push did not name the repository")
	}
	if n := countLines(out, ": Pushed"); n != 1 {
		t.Errorf("first push: %d layers Pushed, want 1", n)
	}
	digest := checkPushDigest(t, out, "v1", "")

	out = w.cmd("push", repo+":v1").mustRun(t)
	if n := countLines(out, ": Layer already exists"); n != 1 || strings.Contains(out, ": Pushed") {
		t.Errorf("second push: %d layers already existed, want 1 and no Pushed", n)
	}
	checkPushDigest(t, out, "v1", digest)

	tags := []string{"v1", "latest", "2", "2.1", "2.1.106"}
	for _, tag := range tags[1:] {
		w.cmd("tag", "image-gallery", repo+":"+tag).mustRun(t)
	}
	out = w.cmd("push", "--all-tags", repo).mustRun(t)
	if n := len(pushDigestLine.FindAllString(out, -1)); n != len(tags) {
		t.Errorf("push --all-tags printed %d digest lines, want %d", n, len(tags))
	}
	checkTagList(t, srv, "alice/image-gallery", tags)
	tagsOut := w.cmd("repo", "tags", repo).mustRun(t)
	if got := slices.Sorted(slices.Values(strings.Fields(tagsOut))); !slices.Equal(got, slices.Sorted(slices.Values(tags))) {
		t.Errorf("repo tags = %v", got)
	}

	// Pull into a fresh store: the same digest, every layer downloaded.
	fresh := newWharfClient(t)
	out = fresh.cmd("pull", repo+":2.1.106").mustRun(t)
	if got := pulledDigest(t, out); got != digest {
		t.Errorf("pulled digest %s, want %s", got, digest)
	}
	if countLines(out, ": Pull complete") != 1 || !strings.Contains(out, "Status: Downloaded newer image for "+repo+":2.1.106") {
		t.Errorf("pull output is not docker's:\n%s", out)
	}
	out = fresh.cmd("pull", repo+":2.1.106").mustRun(t)
	if !strings.Contains(out, "Status: Image is up to date for "+repo+":2.1.106") {
		t.Errorf("second pull is not up to date:\n%s", out)
	}
	checkDigest(t, cmd(crane, "digest", "--insecure", repo+":latest"), digest)

	// A registry that is not allowed plain HTTP is refused with advice.
	// (A name other than localhost/127.x reaching the same server.)
	if _, err := net.DefaultResolver.LookupHost(t.Context(), "registry.local"); err == nil {
		_, port, _ := net.SplitHostPort(host)
		out, err := w.cmd("pull", "registry.local:"+port+"/alice/image-gallery:v1").run(t)
		if err == nil || !strings.Contains(out, "insecure-registries") {
			t.Errorf("pull over plain HTTP from registry.local was not refused with advice: %v\n%s", err, out)
		}
		if out := w.cmd("pull", "--insecure", "registry.local:"+port+"/alice/image-gallery:v1").mustRun(t); pulledDigest(t, out) != digest {
			t.Errorf("--insecure pull gave another digest")
		}
	}

	// Errors a person can act on.
	out, err = w.cmd("pull", repo+":nope").run(t)
	if err == nil || !strings.Contains(out, "manifest unknown") || strings.Contains(out, "{") {
		t.Errorf("pull of an unknown tag: %v %q", err, out)
	}

	out = w.cmd("logout", host).mustRun(t)
	if !strings.Contains(out, "Removing login credentials for "+host) {
		t.Errorf("logout printed %q", out)
	}
}

// TestClientRemoteDocker checks interop with the real docker engine: an
// image docker pushed pulls with wharf with the same digest, and the other
// way round. It uses 127.0.0.1:5000 like TestDockerEngine (tests in this
// package run one at a time) under its own repository names.
func TestClientRemoteDocker(t *testing.T) {
	docker := requireDockerEngine(t)
	busybox := requireStaticBusybox(t)
	if l, err := net.Listen("tcp", dockerListen); err != nil {
		t.Fatalf("%s is taken (%v)", dockerListen, err)
	} else {
		l.Close()
	}
	startWharfAt(t, dockerListen)
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.timeout = dockerTimeout
		return c
	}
	const (
		base       = "wharf-client-e2e/base:1"
		fromDocker = dockerRegistry + "/wharf-client/from-docker:1"
		fromWharf  = dockerRegistry + "/wharf-client/from-wharf:1"
	)
	t.Cleanup(func() { _, _ = d("image", "rm", "-f", base, fromDocker, fromWharf).run(t) })

	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)
	d("tag", base, fromDocker).mustRun(t)
	dockerDigest := checkPushDigest(t, d("push", fromDocker).mustRun(t), "1", "")

	// wharf reaches the same server as 127.0.0.1:5000 (plain HTTP allowed)
	// and, through insecure-registries, as registry.local:5000.
	w := newWharfClient(t)
	if err := os.WriteFile(filepath.Join(w.home, "config.json"), []byte(`{"insecure-registries":["`+dockerRegistry+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := w.cmd("pull", fromDocker).mustRun(t)
	if got := pulledDigest(t, out); got != dockerDigest {
		t.Errorf("wharf pulled %s, docker pushed %s", got, dockerDigest)
	}

	// wharf pushes it under another name; docker pulls the same digest.
	w.cmd("tag", fromDocker, fromWharf).mustRun(t)
	out = w.cmd("push", fromWharf).mustRun(t)
	if n := countLines(out, ": Mounted from wharf-client/from-docker"); n == 0 {
		t.Errorf("push to another repository of the same registry mounted nothing:\n%s", out)
	}
	wharfDigest := checkPushDigest(t, out, "1", dockerDigest)
	out = d("pull", fromWharf).mustRun(t)
	if got := pulledDigest(t, out); got != wharfDigest {
		t.Errorf("docker pulled %s, wharf pushed %s", got, wharfDigest)
	}
	if got := d("run", "--rm", "--network", "none", fromWharf, "cat", "/etc/wharf-e2e-run").mustRun(t); strings.TrimSpace(got) == "" {
		t.Errorf("the image wharf pushed does not run under docker")
	}
}
