//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestContainerImage builds wharf's own image with build/container/build.sh
// and runs it as the chapter runs its registry: a detached container with a
// volume for the data. The real docker engine logs in, pushes and pulls
// through it, and the pushed image is still there after the container is
// restarted.
func TestContainerImage(t *testing.T) {
	docker := requireDockerEngine(t)
	busybox := requireStaticBusybox(t)
	addr := freeLoopbackAddr(t) // --network host: the container listens here
	suffix := strings.ReplaceAll(strings.TrimPrefix(addr, "127.0.0.1:"), ":", "")
	var (
		image     = "wharf-e2e/wharf:test-" + suffix
		container = "wharf-e2e-" + suffix
		volume    = "wharf-e2e-data-" + suffix
		base      = "wharf-e2e/container-base:1"
		repo      = addr + "/admin/gallery"
	)
	cfg := t.TempDir()
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.env = []string{"DOCKER_CONFIG=" + cfg}
		c.timeout = dockerTimeout
		return c
	}
	t.Cleanup(func() {
		_, _ = d("container", "rm", "-f", container).run(t)
		_, _ = d("volume", "rm", "-f", volume).run(t)
		_, _ = d("image", "rm", "-f", image, base, repo+":v1").run(t)
	})

	root := moduleRoot(t)
	build := cmd("bash", filepath.Join(root, "build/container/build.sh"), image)
	build.timeout = 5 * time.Minute
	build.mustRun(t)

	var conf struct {
		Config struct {
			User         string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
			Healthcheck  struct{ Test []string }
			Cmd          []string
		}
		Os, Architecture string
	}
	inspect := d("image", "inspect", "--format", "{{json .}}", image).mustRun(t)
	if err := json.Unmarshal([]byte(inspect), &conf); err != nil {
		t.Fatalf("image inspect: %v", err)
	}
	c := conf.Config
	if c.User == "" || strings.HasPrefix(c.User, "0") || strings.HasPrefix(c.User, "root") {
		t.Errorf("image runs as %q, want a non-root user", c.User)
	}
	if _, ok := c.ExposedPorts["5000/tcp"]; !ok {
		t.Errorf("image exposes %v, want 5000/tcp", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/var/lib/wharf"]; !ok {
		t.Errorf("image volumes %v, want /var/lib/wharf", c.Volumes)
	}
	if !strings.Contains(strings.Join(c.Healthcheck.Test, " "), "healthcheck") || strings.Join(c.Cmd, " ") != "serve" {
		t.Errorf("healthcheck %v, cmd %v; want wharf healthcheck and serve", c.Healthcheck.Test, c.Cmd)
	}
	if conf.Os != "linux" || conf.Architecture != runtime.GOARCH {
		t.Errorf("image platform %s/%s", conf.Os, conf.Architecture)
	}
	if out := d("run", "--rm", "--network", "none", image, "version").mustRun(t); !strings.HasPrefix(out, "wharf ") {
		t.Errorf("wharf version in the image printed %q", out)
	}

	run := func() {
		d("container", "run", "-d", "--name", container, "--network", "host",
			"-v", volume+":/var/lib/wharf",
			"-e", "WHARF_ADDR="+addr, "-e", "WHARF_ADMIN_PASSWORD="+adminPassword,
			"--health-interval", "500ms", "--health-start-period", "30s",
			image).mustRun(t)
		waitHealthy(t, docker, container)
	}
	run()

	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)
	login := d("login", addr, "--username", "admin", "--password-stdin")
	login.stdin = strings.NewReader(adminPassword)
	login.mustRun(t)
	d("image", "tag", base, repo+":v1").mustRun(t)
	digest := checkPushDigest(t, d("image", "push", repo+":v1").mustRun(t), "v1", "")

	// The data is in the volume, not in the container: a restart keeps it,
	// and so does a new container on the same volume.
	d("container", "restart", container).mustRun(t)
	waitHealthy(t, docker, container)
	d("container", "rm", "-f", container).mustRun(t)
	run()

	d("image", "rm", repo+":v1").mustRun(t)
	if out := d("image", "pull", repo+":v1").mustRun(t); !strings.Contains(out, "Digest: "+digest) {
		t.Errorf("pull after restart did not report digest %s", digest)
	}
}

// waitHealthy waits for docker to report the container's healthcheck as
// passing; the image's HEALTHCHECK runs `wharf healthcheck` inside it.
func waitHealthy(t *testing.T, docker, container string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(docker, "container", "inspect", "--format", "{{.State.Health.Status}}", container).CombinedOutput()
		status := strings.TrimSpace(string(out))
		if err == nil && status == "healthy" {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command(docker, "container", "logs", container).CombinedOutput()
			t.Fatalf("container %s not healthy after 60s (status %q, %v); logs:\n%s", container, status, err, tail(string(logs), 40))
		}
		time.Sleep(250 * time.Millisecond) // polling docker's view, not waiting for time to pass
	}
}
