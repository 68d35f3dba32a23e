//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientDockerShareTokenLogins: against a wharf that hands out refresh
// tokens at login (--login-refresh-tokens; by default it does not, as
// Docker Hub), `wharf login` and `docker login` both keep the refresh token
// as "identitytoken" (not the password), and each pushes and pulls with
// the entry the other wrote.
func TestClientDockerShareTokenLogins(t *testing.T) {
	docker := requireDockerEngine(t)
	busybox := requireStaticBusybox(t)
	srv := startWharfAuth(t, dockerListen, "--login-refresh-tokens")
	addUser(t, srv, "alice", alicePassword)
	const (
		fromWharf  = dockerRegistry + "/alice/client-from-wharf:1"
		fromDocker = dockerRegistry + "/alice/client-from-docker:1"
		base       = "wharf-client-e2e/auth-base:1"
	)

	// wharf logs in and pushes.
	w := newWharfClient(t)
	if err := os.WriteFile(filepath.Join(w.home, "config.json"), []byte(`{"insecure-registries":["`+dockerRegistry+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	imp := w.cmd("import", "-", fromWharf)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)
	login := w.cmd("login", dockerRegistry, "-u", "alice", "--password-stdin")
	login.stdin = strings.NewReader(alicePassword + "\n")
	if out := login.mustRun(t); out != "Login Succeeded\n" {
		t.Errorf("wharf login printed %q", out)
	}
	b, err := os.ReadFile(filepath.Join(w.dockerConfig, "config.json"))
	if err != nil || !strings.Contains(string(b), `"identitytoken": "wharf_rt_`) || strings.Contains(string(b), alicePassword) {
		t.Errorf("wharf's config.json after login: %s %v; want an identity token and no password", b, err)
	}
	wharfDigest := checkPushDigest(t, w.cmd("push", fromWharf).mustRun(t), "1", "")

	// docker, with wharf's config.json, pulls it and pushes its own.
	d := func(cfg string, args ...string) command {
		c := cmd(docker, args...)
		c.env = []string{"DOCKER_CONFIG=" + cfg}
		c.timeout = dockerTimeout
		return c
	}
	t.Cleanup(func() { _, _ = d(w.dockerConfig, "image", "rm", "-f", fromWharf, fromDocker, base).run(t) })
	if got := pulledDigest(t, d(w.dockerConfig, "pull", fromWharf).mustRun(t)); got != wharfDigest {
		t.Errorf("docker pulled %s, wharf pushed %s", got, wharfDigest)
	}

	// docker logs in with its own config; wharf uses docker's entry.
	dockerCfg := t.TempDir()
	dlogin := d(dockerCfg, "login", dockerRegistry, "-u", "alice", "--password-stdin")
	dlogin.stdin = strings.NewReader(alicePassword + "\n")
	dlogin.mustRun(t)
	dimp := d(dockerCfg, "import", "-", base)
	dimp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	dimp.mustRun(t)
	d(dockerCfg, "tag", base, fromDocker).mustRun(t)
	dockerDigest := checkPushDigest(t, d(dockerCfg, "push", fromDocker).mustRun(t), "1", "")

	w2 := wharfClient{home: t.TempDir(), dockerConfig: dockerCfg}
	if err := os.WriteFile(filepath.Join(w2.home, "config.json"), []byte(`{"insecure-registries":["`+dockerRegistry+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := pulledDigest(t, w2.cmd("pull", fromDocker).mustRun(t)); got != dockerDigest {
		t.Errorf("wharf pulled %s with docker's login, docker pushed %s", got, dockerDigest)
	}
}
