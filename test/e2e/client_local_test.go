//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientLocal moves images between wharf's local store and the real
// docker engine in both directions, and has skopeo read wharf's archive.
func TestClientLocal(t *testing.T) {
	docker := requireDockerEngine(t)
	skopeo := requireTool(t, "skopeo")
	busybox := requireStaticBusybox(t)
	home := t.TempDir()
	wharf := func(args ...string) command {
		c := cmd(wharfBin, args...)
		c.env = []string{"WHARF_HOME=" + home}
		return c
	}
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.timeout = dockerTimeout
		return c
	}
	const (
		app   = "wharf-e2e-local/app:1"
		again = "wharf-e2e-local/app:from-docker"
	)
	t.Cleanup(func() { _, _ = d("image", "rm", "-f", app, again).run(t) })
	work := t.TempDir()

	// wharf import → wharf save → skopeo inspect, docker load, docker run.
	rootfs := busyboxRootfsTar(t, busybox)
	runID := tarFile(t, rootfs, "etc/wharf-e2e-run")
	imp := wharf("image", "import", "-", app)
	imp.stdin = bytes.NewReader(rootfs)
	id := strings.TrimSpace(imp.mustRun(t))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("wharf import printed %q, want an image ID", id)
	}
	saved := filepath.Join(work, "wharf-save.tar")
	wharf("image", "save", "-o", saved, app).mustRun(t)

	var sk struct {
		Architecture, Os string
		Layers           []string
	}
	if err := json.Unmarshal([]byte(cmd(skopeo, "inspect", "docker-archive:"+saved).mustRun(t)), &sk); err != nil {
		t.Fatalf("skopeo inspect output: %v", err)
	}
	if sk.Os != "linux" || len(sk.Layers) != 1 {
		t.Errorf("skopeo sees os %q and %d layers, want linux and 1", sk.Os, len(sk.Layers))
	}

	if out := d("load", "-i", saved).mustRun(t); !strings.Contains(out, "Loaded image: "+app) {
		t.Errorf("docker load printed %q, want Loaded image: %s", out, app)
	}
	if out := d("run", "--rm", "--network", "none", app, "/bin/cat", "/etc/wharf-e2e-run").mustRun(t); out != runID {
		t.Errorf("docker run printed %q, want %q", out, runID)
	}
	wharfLayers := wharf("image", "inspect", "--format", "{{json .RootFS.Layers}}", app).mustRun(t)
	if dockerLayers := d("image", "inspect", "--format", "{{json .RootFS.Layers}}", app).mustRun(t); dockerLayers != wharfLayers {
		t.Errorf("docker sees layers %s, wharf %s", dockerLayers, wharfLayers)
	}

	// docker save → wharf load.
	d("tag", app, again).mustRun(t)
	dsaved := filepath.Join(work, "docker-save.tar")
	d("save", "-o", dsaved, again).mustRun(t)
	wharf("image", "rm", "-f", app).mustRun(t)
	if out := wharf("image", "load", "-i", dsaved).mustRun(t); out != "Loaded image: "+again+"\n" {
		t.Errorf("wharf load printed %q, want Loaded image: %s", out, again)
	}
	if got := wharf("image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", again).mustRun(t); got != id+" "+wharfLayers {
		t.Errorf("after the docker round trip wharf sees %q, want %q", got, id+" "+wharfLayers)
	}
	ls := wharf("image", "ls", "--filter", "reference=wharf-e2e-local/*").mustRun(t)
	if !strings.Contains(ls, "wharf-e2e-local/app   from-docker   "+id[7:19]) {
		t.Errorf("image ls:\n%s", ls)
	}
	// And back once more: what wharf loaded from docker saves and runs again.
	resaved := filepath.Join(work, "wharf-resave.tar")
	wharf("image", "save", "-o", resaved, again).mustRun(t)
	d("image", "rm", "-f", again).mustRun(t)
	d("load", "-i", resaved).mustRun(t)
	if out := d("run", "--rm", "--network", "none", again, "/bin/cat", "/etc/wharf-e2e-run").mustRun(t); out != runID {
		t.Errorf("docker run after the round trip printed %q, want %q", out, runID)
	}
}

// tarFile returns the content of one file in a tar.
func tarFile(t *testing.T, b []byte, name string) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in tar: %v", name, err)
		}
		if h.Name == name {
			c, _ := io.ReadAll(tr)
			return string(c)
		}
	}
}
