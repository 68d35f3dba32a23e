//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// identityTokenRefusal is what podman and skopeo (containers/common) say
// when asked to log in to a registry for which docker's config.json holds
// an identity token.
const identityTokenRefusal = "currently logged in, auth file contains an Identity token"

// TestAuthDockerThenPodmanAndSkopeo: people use docker, podman and skopeo
// on one machine, and podman and skopeo read docker's config.json. After
// `docker login` to wharf with its defaults, `podman login` and
// `skopeo login` to the same registry with the same config succeed and
// then pull and push with that login. With --login-refresh-tokens docker
// stores an identity token instead of the password, and both refuse to
// log in: the trade the README describes.
func TestAuthDockerThenPodmanAndSkopeo(t *testing.T) {
	docker := requireDockerEngine(t)
	podman := requireTool(t, "podman")
	skopeo := requireTool(t, "skopeo")
	rootfs := busyboxRootfsTar(t, requireStaticBusybox(t))

	for _, tc := range []struct {
		name    string
		refresh bool
	}{{"login refresh tokens", true}, {"default", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.refresh {
				args = append(args, "--login-refresh-tokens")
			}
			srv := startWharfAuth(t, dockerListen, args...)
			addUser(t, srv, "alice", alicePassword)

			cfg := t.TempDir()
			authFile := filepath.Join(cfg, "config.json")
			d := func(args ...string) command {
				c := cmd(docker, args...)
				c.env = []string{"DOCKER_CONFIG=" + cfg}
				c.timeout = dockerTimeout
				return c
			}
			const base = "wharf-e2e/mixed-base:1"
			repo := dockerRegistry + "/alice/mixed"
			t.Cleanup(func() { _, _ = d("image", "rm", "-f", base, repo+":v1").run(t) })
			imp := d("import", "-", base)
			imp.stdin = bytes.NewReader(rootfs)
			imp.mustRun(t)

			login := d("login", dockerRegistry, "--username", "alice", "--password-stdin")
			login.stdin = strings.NewReader(alicePassword + "\n")
			if out := login.mustRun(t); !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("docker login printed %q", out)
			}
			saved, err := os.ReadFile(authFile)
			if err != nil {
				t.Fatal(err)
			}
			hasIdentity := strings.Contains(string(saved), `"identitytoken": "wharf_rt_`)
			hasPassword := strings.Contains(string(saved), base64.StdEncoding.EncodeToString([]byte("alice:"+alicePassword)))
			if hasIdentity != tc.refresh || hasPassword == tc.refresh {
				t.Errorf("docker's config.json after login (identity token %v, password %v):\n%s", hasIdentity, hasPassword, saved)
			}
			d("image", "tag", base, repo+":v1").mustRun(t)
			digest := checkPushDigest(t, d("image", "push", repo+":v1").mustRun(t), "v1", "")

			// podman and skopeo log in with docker's config.json as their auth file.
			p := podmanIn(t, podman, t.TempDir(), authFile)
			podmanLogin := p("login", "--tls-verify=false", "--username", "alice", "--password-stdin", dockerRegistry)
			podmanLogin.stdin = strings.NewReader(alicePassword + "\n")
			skopeoLogin := cmd(skopeo, "login", "--tls-verify=false", "--authfile", authFile,
				"--username", "alice", "--password-stdin", dockerRegistry)
			skopeoLogin.stdin = strings.NewReader(alicePassword + "\n")
			if tc.refresh {
				for name, c := range map[string]command{"podman": podmanLogin, "skopeo": skopeoLogin} {
					if out, err := c.run(t); err == nil || !strings.Contains(out, identityTokenRefusal) {
						t.Errorf("%s login beside docker's identity token: err=%v, want %q; output:\n%s", name, err, identityTokenRefusal, out)
					}
				}
				return
			}

			if out := podmanLogin.mustRun(t); !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("podman login after docker login printed %q", out)
			}
			p("pull", "--tls-verify=false", repo+":v1").mustRun(t)
			if got := strings.TrimSpace(p("image", "inspect", "--format", "{{.Digest}}", repo+":v1").mustRun(t)); got != digest {
				t.Errorf("podman pulled %s, want %s", got, digest)
			}
			p("tag", repo+":v1", repo+":podman").mustRun(t)
			p("push", "--tls-verify=false", repo+":podman").mustRun(t)

			if out := skopeoLogin.mustRun(t); !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("skopeo login after docker login printed %q", out)
			}
			cmd(skopeo, "copy", "--authfile", authFile, "--src-tls-verify=false", "--dest-tls-verify=false",
				"docker://"+repo+":v1", "docker://"+repo+":skopeo").mustRun(t)
			if out := cmd(skopeo, "inspect", "--authfile", authFile, "--tls-verify=false", "docker://"+repo+":skopeo").mustRun(t); !strings.Contains(out, digest) {
				t.Errorf("skopeo inspect does not show %s:\n%s", digest, out)
			}
			checkTagList(t, srv, "alice/mixed", []string{"podman", "skopeo", "v1"})

			// docker still pushes with the login the other two shared.
			d("image", "tag", base, repo+":docker-again").mustRun(t)
			checkPushDigest(t, d("image", "push", repo+":docker-again").mustRun(t), "docker-again", digest)
			d("image", "rm", repo+":docker-again").mustRun(t)
		})
	}
}
