//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	daemonJSON = "/etc/docker/daemon.json"
	dockerPID  = "/var/run/docker.pid"
)

// TestMirrorDockerEngine: the real docker engine, with wharf in its
// daemon.json registry-mirrors, pulls busybox:latest (docker.io's
// library/busybox) from an upstream wharf that plays Docker Hub. Docker
// has no route to the real Hub here, so only the mirror can have
// answered. The second pull, after the image is removed from docker, is
// served from the cache: the upstream sees no further request.
func TestMirrorDockerEngine(t *testing.T) {
	docker := requireDockerEngine(t)
	bb := requireStaticBusybox(t)
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.timeout = dockerTimeout
		return c
	}

	up := startWharf(t)
	want := seedBusybox(t, up, bb)
	conf := filepath.Join(t.TempDir(), "wharf.yaml")
	// A long TTL: the second pull must not even ask the upstream for the tag.
	writeFile(t, conf, fmt.Sprintf(`mirror:
  anonymous_pull: true
  tag_ttl: 1h
  upstreams:
    - host: docker.io
      url: %s
      namespaces: [library]
`, up.URL))
	mirror := startWharfAuth(t, freeLoopbackAddr(t), "--config", conf)
	useRegistryMirror(t, docker, "http://"+mirror.Addr)

	const image = "busybox:latest"
	rmImage := func() { _, _ = d("image", "rm", "-f", image).run(t) }
	rmImage()
	t.Cleanup(rmImage)
	pull := func() {
		t.Helper()
		out := d("pull", image).mustRun(t)
		if !strings.Contains(out, "Digest: "+want.String()) {
			t.Fatalf("docker pull %s through the mirror: want digest %s\n%s", image, want, out)
		}
		if got := d("run", "--rm", "--network", "none", image, "echo", "pulled through wharf").mustRun(t); got != "pulled through wharf\n" {
			t.Errorf("docker run %s printed %q", image, got)
		}
	}
	pull()
	first := upstreamRequests(t, up, "/v2/library/busybox/")
	if first == 0 {
		t.Fatal("the upstream saw no request for library/busybox: the pull did not go through the mirror")
	}
	checkTagList(t, mirror, "library/busybox", []string{"latest"})

	rmImage()
	pull()
	if again := upstreamRequests(t, up, "/v2/library/busybox/"); again != first {
		t.Errorf("the second pull reached the upstream: %d requests after the first pull, %d after the second", first, again)
	}
	t.Logf("upstream requests for library/busybox: %d after the first pull, unchanged after the second", first)
}

// seedBusybox pushes library/busybox:latest, a static busybox as the
// entrypoint plus a file that makes its digest new on every run, to up.
func seedBusybox(t *testing.T, up *wharfServer, bb string) v1.Hash {
	t.Helper()
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	stamp := []byte(strconv.FormatInt(time.Now().UnixNano(), 10))
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"bin/busybox", 0o755, bin}, {"etc/seeded", 0o644, stamp}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Entrypoint: []string{"/bin/busybox"}, Cmd: []string{"sh"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(up.Addr+"/library/busybox:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("seed library/busybox: %v", err)
	}
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

// upstreamRequests counts the requests srv logged whose path starts with prefix.
func upstreamRequests(t *testing.T, srv *wharfServer, prefix string) int {
	t.Helper()
	log, err := os.ReadFile(srv.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(log), " path="+prefix)
}

// useRegistryMirror adds mirror to the shared engine's registry-mirrors
// for the test: daemon.json is rewritten and dockerd reloads it on
// SIGHUP, as setup.sh does for insecure-registries. A reload leaves
// alone the settings the file does not name, so the cleanup reloads with
// an empty list before it puts the file back as it was: other tests see
// the engine, and the file, as setup.sh left them.
func useRegistryMirror(t *testing.T, docker, mirror string) {
	t.Helper()
	orig, err := os.ReadFile(daemonJSON)
	if err != nil {
		t.Fatalf("read %s: %v; run `bash test/e2e/setup.sh`", daemonJSON, err)
	}
	var conf map[string]any
	if err := json.Unmarshal(orig, &conf); err != nil {
		t.Fatalf("%s: %v", daemonJSON, err)
	}
	withMirrors := func(mirrors ...string) []byte {
		conf["registry-mirrors"] = append([]string{}, mirrors...)
		b, err := json.Marshal(conf)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	reload := func(body []byte, want []string) error {
		if err := os.WriteFile(daemonJSON, body, 0o644); err != nil {
			return err
		}
		pidText, err := os.ReadFile(dockerPID)
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
		if err != nil {
			return fmt.Errorf("%s: %w", dockerPID, err)
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return fmt.Errorf("reload dockerd (pid %d): %w", pid, err)
		}
		// The reload is asynchronous: wait until the engine reports it.
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := cmd(docker, "info", "--format", "{{json .RegistryConfig.Mirrors}}").run(t)
			var got []string
			if err == nil && json.Unmarshal([]byte(strings.TrimSpace(out)), &got) == nil && slices.Equal(got, want) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("dockerd reports registry mirrors %s, want %v", strings.TrimSpace(out), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		if err := reload(withMirrors(), nil); err != nil {
			t.Errorf("remove the registry mirror: %v", err)
		}
		if err := os.WriteFile(daemonJSON, orig, 0o644); err != nil {
			t.Errorf("restore %s: %v", daemonJSON, err)
		}
	})
	if err := reload(withMirrors(mirror), []string{mirror + "/"}); err != nil {
		t.Fatal(err)
	}
}
