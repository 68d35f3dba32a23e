//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// dockerContainerd is the containerd that the shared docker engine runs;
// ctr only reads from it into a namespace of its own, its configuration
// stays untouched (the mirror comes from ctr's --hosts-dir).
const dockerContainerd = "/var/run/docker/containerd/containerd.sock"

// TestMirrorContainerd: containerd's ctr pulls through a mirroring wharf
// with hosts.toml for docker.io and for another registry, so that ?ns=
// is what tells wharf the upstream; the fallback servers in hosts.toml
// are dead, so only the mirror can have answered. With the upstream
// stopped, the cached image still pulls and an uncached one fails with a
// message naming the upstream.
func TestMirrorContainerd(t *testing.T) {
	ctr := requireTool(t, "ctr")
	if _, err := os.Stat(dockerContainerd); err != nil {
		t.Fatalf("no containerd socket at %s (%v); run `bash test/e2e/setup.sh`", dockerContainerd, err)
	}
	up := startWharf(t)
	seed := func(repo string) v1.Hash {
		t.Helper()
		img, err := random.Image(256<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(up.Addr+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("seed %s: %v", repo, err)
		}
		d, _ := img.Digest()
		return d
	}
	busybox := seed("library/busybox:latest")
	tool := seed("owner/tool:v1")

	conf := filepath.Join(t.TempDir(), "wharf.yaml")
	writeFile(t, conf, fmt.Sprintf(`mirror:
  upstreams:
    - host: docker.io
      url: %s
      namespaces: [library]
    - host: ghcr.test
      url: %s
      prefix: ghcr
`, up.URL, up.URL))
	mirror := startWharf(t, "--config", conf)

	hosts := t.TempDir()
	for _, h := range []string{"docker.io", "ghcr.test"} {
		writeFile(t, filepath.Join(hosts, h, "hosts.toml"), fmt.Sprintf(`server = "http://127.0.0.1:9"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, mirror.Addr))
	}
	ns := fmt.Sprintf("wharf-e2e-mirror-%d", time.Now().UnixNano())
	c := func(args ...string) command {
		x := cmd(ctr, append([]string{"--address", dockerContainerd, "-n", ns}, args...)...)
		x.timeout = 2 * time.Minute
		return x
	}
	t.Cleanup(func() {
		if out, err := c("content", "ls", "-q").run(t); err == nil {
			for _, d := range strings.Fields(out) {
				_, _ = c("content", "rm", d).run(t)
			}
		}
		_, _ = cmd(ctr, "--address", dockerContainerd, "namespaces", "rm", ns).run(t)
	})
	fetch := func(ref string) (string, error) {
		return c("content", "fetch", "--hosts-dir", hosts, ref).run(t)
	}
	for ref, want := range map[string]v1.Hash{"docker.io/library/busybox:latest": busybox, "ghcr.test/owner/tool:v1": tool} {
		if out, err := fetch(ref); err != nil {
			t.Fatalf("ctr fetch %s through the mirror: %v\n%s", ref, err, out)
		}
		if out := c("content", "ls", "-q").mustRun(t); !strings.Contains(out, want.String()) {
			t.Errorf("after fetching %s, containerd lacks its manifest %s", ref, want)
		}
	}
	// ?ns=ghcr.test put owner/tool under the prefix.
	checkTagList(t, mirror, "ghcr/owner/tool", []string{"v1"})
	checkTagList(t, mirror, "library/busybox", []string{"latest"})

	up.stop(t)
	for _, repo := range []string{"library/busybox:latest", "ghcr/owner/tool:v1"} {
		ref, _ := name.ParseReference(mirror.Addr+"/"+repo, name.Insecure)
		img, err := remote.Image(ref)
		if err == nil {
			_, err = img.Digest()
		}
		if err != nil {
			t.Errorf("with the upstream stopped, cached %s: %v", repo, err)
		}
	}
	// ctr resolves with a HEAD, whose answer has no body: it reports the
	// mirror's 502; a GET carries the reason.
	out, err := fetch("docker.io/library/alpine:latest")
	if err == nil || !strings.Contains(out, "pulling from host "+mirror.Addr+" failed") || !strings.Contains(out, "502 Bad Gateway") {
		t.Errorf("an uncached image with the upstream stopped: err=%v\n%s", err, out)
	}
	resp, err := http.Get(mirror.URL + "/v2/library/alpine/manifests/latest")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "upstream docker.io could not be asked") {
		t.Errorf("GET of an uncached manifest with the upstream stopped = %d %s", resp.StatusCode, body)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMirrorConcurrentPullsOfBigBlob: 20 clients pull an uncached
// 256 MiB blob through the mirror at once; the upstream's access log
// shows one GET, every client gets the same bytes, and the mirror's peak
// RSS shows that the blob was streamed, not held.
func TestMirrorConcurrentPullsOfBigBlob(t *testing.T) {
	const size, clients = 256 << 20, 20
	up := startWharf(t)
	blob := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{42}), size) }
	h := sha256.New()
	if _, err := io.Copy(h, blob()); err != nil {
		t.Fatal(err)
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	req, _ := http.NewRequest(http.MethodPost, up.URL+"/v2/library/big/blobs/uploads/?digest="+d, blob())
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("seed the upstream: %s", resp.Status)
	}
	conf := filepath.Join(t.TempDir(), "wharf.yaml")
	writeFile(t, conf, fmt.Sprintf("mirror:\n  upstreams:\n    - host: docker.io\n      url: %s\n      namespaces: [library]\n", up.URL))
	mirror := startWharf(t, "--config", conf)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			resp, err := http.Get(mirror.URL + "/v2/library/big/blobs/" + d)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); err != nil || got != d {
				errs <- fmt.Errorf("client got %d bytes, %s, %v", n, got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	elapsed := time.Since(start)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", mirror.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var hwm string
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			hwm = strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	log, err := os.ReadFile(up.logPath)
	if err != nil {
		t.Fatal(err)
	}
	gets := strings.Count(string(log), "method=GET path=/v2/library/big/blobs/"+d)
	t.Logf("%d clients × %d MiB through the mirror in %s; upstream blob GETs: %d; mirror peak RSS %s", clients, size>>20, elapsed.Round(time.Millisecond), gets, hwm)
	if gets != 1 {
		t.Errorf("the upstream saw %d GETs of the blob, want 1", gets)
	}
	var kb int64
	fmt.Sscan(hwm, &kb)
	if kb == 0 || kb > 192<<10 {
		t.Errorf("mirror peak RSS %s: the blob must stream, not sit in memory", hwm)
	}
}
