//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const alicePassword = "alice-in-wonderland"

// createToken makes an access token with `wharf token create` and returns
// its secret.
func createToken(t *testing.T, srv *wharfServer, user, name, scope string) string {
	t.Helper()
	c := cmd(wharfBin, append([]string{"token", "create", user, name, "--scope", scope}, srv.storeArgs...)...)
	c.env = srv.env
	out := strings.TrimSpace(c.mustRun(t))
	lines := strings.Split(out, "\n")
	secret := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(secret, "wharf_pat_") {
		t.Fatalf("token create printed %q", out)
	}
	return secret
}

// TestAuthDockerLogin: the real docker engine logs in to wharf with a
// password and with an access token, pushes and pulls through docker's
// token flow, and is refused a private repository once logged out, with
// docker's usual message, while a public one pulls anonymously.
func TestAuthDockerLogin(t *testing.T) {
	docker := requireDockerEngine(t)
	busybox := requireStaticBusybox(t)
	srv := startWharfAuth(t, dockerListen)
	addUser(t, srv, "alice", alicePassword)
	pat := createToken(t, srv, "alice", "ci", "read-write")

	cfg := t.TempDir()
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.env = []string{"DOCKER_CONFIG=" + cfg}
		c.timeout = dockerTimeout
		return c
	}
	const (
		base = "wharf-e2e/auth-base:1"
		repo = dockerRegistry + "/alice/image-gallery"
	)
	t.Cleanup(func() {
		_, _ = d("image", "rm", "-f", base, repo+":v1", repo+":v2").run(t)
	})
	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)

	login := d("login", dockerRegistry, "--username", "alice", "--password-stdin")
	login.stdin = strings.NewReader(alicePassword + "\n")
	if out := login.mustRun(t); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login printed %q", out)
	}
	// wharf hands out no refresh token by default (as Docker Hub), so docker
	// keeps no identity token; TestAuthDockerThenPodmanAndSkopeo has why.
	if b, err := os.ReadFile(filepath.Join(cfg, "config.json")); err != nil || strings.Contains(string(b), "identitytoken") {
		t.Errorf("docker's config.json after login: %s %v", b, err)
	}
	d("image", "tag", base, repo+":v1").mustRun(t)
	out := d("image", "push", repo+":v1").mustRun(t)
	digest := checkPushDigest(t, out, "v1", "")

	// Logged out, the private repository is refused the way Hub refuses it.
	d("logout", dockerRegistry).mustRun(t)
	d("image", "rm", repo+":v1").mustRun(t)
	out, err := d("pull", repo+":v1").run(t)
	if err == nil || !strings.Contains(out, "pull access denied for "+repo) || !strings.Contains(out, "docker login") {
		t.Errorf("anonymous pull of a private repository: err=%v, output:\n%s", err, out)
	}
	// Made public, it pulls anonymously.
	cmd(wharfBin, "visibility", "alice/image-gallery", "public", "--data-dir", srv.DataDir).mustRun(t)
	out = d("pull", repo+":v1").mustRun(t)
	if !strings.Contains(out, "Digest: "+digest) {
		t.Errorf("anonymous pull of the public repository:\n%s", out)
	}
	// Anonymous push is still refused.
	d("image", "tag", base, repo+":v2").mustRun(t)
	if out, err := d("image", "push", repo+":v2").run(t); err == nil {
		t.Errorf("anonymous push succeeded:\n%s", out)
	}

	// An access token works as the password.
	login = d("login", dockerRegistry, "--username", "alice", "--password-stdin")
	login.stdin = strings.NewReader(pat + "\n")
	if out := login.mustRun(t); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login with a token printed %q", out)
	}
	out = d("image", "push", repo+":v2").mustRun(t)
	checkPushDigest(t, out, "v2", digest)
	checkTagList(t, srv, "alice/image-gallery", []string{"v1", "v2"})
}

// TestAuthOtherClients: wharf, crane and skopeo log in to an
// authenticating wharf with a password and with an access token, and
// push and pull through it; a wrong password is refused at login.
func TestAuthOtherClients(t *testing.T) {
	crane := requireTool(t, "crane")
	skopeo := requireTool(t, "skopeo")
	busybox := requireStaticBusybox(t)
	srv := startWharfAuth(t, freeLoopbackAddr(t))
	host := srv.Addr
	addUser(t, srv, "alice", alicePassword)
	pat := createToken(t, srv, "alice", "ci", "read-write")

	w := newWharfClient(t)
	imp := w.cmd("import", "-", "image-gallery")
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)

	bad := w.cmd("login", host, "-u", "alice", "--password-stdin")
	bad.stdin = strings.NewReader("wrong-password\n")
	if out, err := bad.run(t); err == nil {
		t.Errorf("wharf login with a wrong password succeeded:\n%s", out)
	}

	for _, secret := range []struct{ name, value string }{{"password", alicePassword}, {"token", pat}} {
		t.Run(secret.name, func(t *testing.T) {
			repo := host + "/alice/" + secret.name
			// wharf: login, push, pull into a fresh store.
			login := w.cmd("login", host, "-u", "alice", "--password-stdin")
			login.stdin = strings.NewReader(secret.value + "\n")
			if out := login.mustRun(t); !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("wharf login printed %q", out)
			}
			w.cmd("tag", "image-gallery", repo+":v1").mustRun(t)
			digest := checkPushDigest(t, w.cmd("push", repo+":v1").mustRun(t), "v1", "")
			fresh := newWharfClient(t)
			fresh.dockerConfig = w.dockerConfig
			if got := pulledDigest(t, fresh.cmd("pull", repo+":v1").mustRun(t)); got != digest {
				t.Errorf("wharf pulled %s, want %s", got, digest)
			}

			// crane: its own login, a copy inside the registry, a digest.
			craneCfg := t.TempDir()
			c := func(args ...string) command {
				x := cmd(crane, args...)
				x.env = []string{"DOCKER_CONFIG=" + craneCfg}
				return x
			}
			c("auth", "login", host, "-u", "alice", "-p", secret.value).mustRun(t)
			c("copy", "--insecure", repo+":v1", repo+":crane").mustRun(t)
			checkDigest(t, c("digest", "--insecure", repo+":crane"), digest)

			// skopeo: its own login and a copy.
			authFile := filepath.Join(t.TempDir(), "auth.json")
			cmd(skopeo, "login", "--tls-verify=false", "--authfile", authFile, "-u", "alice", "-p", secret.value, host).mustRun(t)
			cmd(skopeo, "copy", "--authfile", authFile, "--src-tls-verify=false", "--dest-tls-verify=false",
				"docker://"+repo+":v1", "docker://"+repo+":skopeo").mustRun(t)
			out := cmd(skopeo, "inspect", "--authfile", authFile, "--tls-verify=false", "docker://"+repo+":skopeo").mustRun(t)
			if !strings.Contains(out, digest) {
				t.Errorf("skopeo inspect does not show %s:\n%s", digest, out)
			}
			checkCatalogHas(t, srv, "alice", secret.value, "alice/"+secret.name)
			// Without credentials, the private repository stays shut.
			if out, err := cmd(skopeo, "inspect", "--no-creds", "--tls-verify=false", "docker://"+repo+":v1").run(t); err == nil {
				t.Errorf("anonymous skopeo inspect of a private repository succeeded:\n%s", out)
			}
		})
	}
}

// TestAuthTLS: with --tls-self-signed wharf serves HTTPS with a
// certificate from its own CA; a client trusting the CA pushes, one that
// does not is refused with a certificate error.
func TestAuthTLS(t *testing.T) {
	crane := requireTool(t, "crane")
	srv := startWharfEnv(t, freeLoopbackAddr(t), []string{"WHARF_ADMIN_PASSWORD=" + adminPassword},
		"--auth=token", "--tls-self-signed", "127.0.0.1,localhost")
	ca := filepath.Join(srv.DataDir, "tls", "ca.crt")
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatalf("no CA in the data directory: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	_, port, _ := net.SplitHostPort(srv.Addr)
	host := "localhost:" + port

	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := trusting.Get("https://" + host + "/v2/")
	if err != nil {
		t.Fatalf("HTTPS with the CA trusted: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="https://`+host+`/token"`) {
		t.Errorf("GET /v2/ over HTTPS = %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, err := http.Get("https://" + host + "/v2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: err = %v, want a certificate error", err)
	}

	layer := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(layer, oneFileTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	craneCfg := t.TempDir()
	c := func(trust bool, args ...string) command {
		x := cmd(crane, args...)
		x.env = []string{"DOCKER_CONFIG=" + craneCfg, "SSL_CERT_DIR=/nonexistent"}
		if trust {
			x.env = append(x.env, "SSL_CERT_FILE="+ca)
		} else {
			x.env = append(x.env, "SSL_CERT_FILE=/nonexistent")
		}
		return x
	}
	c(true, "auth", "login", host, "-u", "admin", "-p", adminPassword).mustRun(t)
	c(true, "append", "-f", layer, "-t", host+"/admin/tls:v1").mustRun(t)
	if out, err := c(true, "digest", host+"/admin/tls:v1").run(t); err != nil || !strings.HasPrefix(out, "sha256:") {
		t.Errorf("crane digest over HTTPS: %v %s", err, out)
	}
	out, err := c(false, "append", "-f", layer, "-t", host+"/admin/tls:v2").run(t)
	if err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("push without trusting the CA: err=%v\n%s", err, out)
	}
}

// oneFileTar is a one-file layer for pushes that need no shell.
func oneFileTar(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	body := []byte("hello over https\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkCatalogHas fails unless the catalog as user lists repo.
func checkCatalogHas(t *testing.T, srv *wharfServer, user, password, repo string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v2/_catalog", nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cat struct{ Repositories []string }
	_ = json.NewDecoder(resp.Body).Decode(&cat)
	if !slices.Contains(cat.Repositories, repo) {
		t.Errorf("catalog for %s = %v, want %s in it", user, cat.Repositories, repo)
	}
}
