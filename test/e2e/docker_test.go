//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// dockerRegistry is how docker reaches wharf: setup.sh maps
	// registry.local to 127.0.0.1 and lists it in insecure-registries.
	dockerRegistry = "registry.local:5000"
	dockerListen   = "127.0.0.1:5000"
	// A failing docker push retries for more than a minute before it gives up.
	dockerTimeout = 4 * time.Minute
)

// pushDigestLine is the last line of a successful `docker push`.
var pushDigestLine = regexp.MustCompile(`(?m)^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)\s*$`)

// TestDockerEngine drives the real docker CLI and engine against wharf:
// build, push, re-push, tag, pull, and build on top of a pulled image.
func TestDockerEngine(t *testing.T) {
	requireDockerRegistryAddr(t)
	srv := startWharfAt(t, dockerListen)
	dockerRoundTrip(t, srv)
}

// requireDockerRegistryAddr checks that dockerRegistry leads to
// dockerListen and that nothing listens there yet.
func requireDockerRegistryAddr(t *testing.T) {
	t.Helper()
	if addrs, err := net.DefaultResolver.LookupHost(t.Context(), "registry.local"); err != nil || !slices.Contains(addrs, "127.0.0.1") {
		t.Fatalf("registry.local resolves to %v (%v), want 127.0.0.1; run `bash test/e2e/setup.sh`", addrs, err)
	}
	if l, err := net.Listen("tcp", dockerListen); err != nil {
		t.Fatalf("%s is taken (%v): the docker test needs it for %s", dockerListen, err, dockerRegistry)
	} else {
		l.Close()
	}
}

// dockerRoundTrip is TestDockerEngine's scenario against whatever listens
// on dockerListen; srv is the wharf asked for the tag list afterwards.
func dockerRoundTrip(t *testing.T, srv *wharfServer) {
	t.Helper()
	docker := requireDockerEngine(t)
	busybox := requireStaticBusybox(t)
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.timeout = dockerTimeout
		return c
	}
	const (
		base  = "wharf-e2e/base:1"
		local = "wharf-e2e/ui:1"
		repo  = dockerRegistry + "/gallery/ui"
		app   = dockerRegistry + "/gallery/app:v1"
	)
	tags := []string{"v1", "latest", "2", "2.1", "2.1.106"}
	t.Cleanup(func() {
		refs := []string{base, local, app}
		for _, tag := range tags {
			refs = append(refs, repo+":"+tag)
		}
		_, _ = d(append([]string{"image", "rm", "-f"}, refs...)...).run(t)
	})

	// A base image from a busybox rootfs, and an image with two more layers on it.
	rootfs := busyboxRootfsTar(t, busybox)
	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(rootfs)
	imp.mustRun(t)
	buildCtx := writeBuildContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\n" +
			"RUN mkdir -p /app && echo hello from wharf > /app/hello.txt\n" +
			"COPY greeting.txt /app/greeting.txt\n",
		"greeting.txt": "greetings, registry\n",
	})
	d("build", "--network", "none", "-t", local, buildCtx).mustRun(t)
	layers := strings.Fields(d("image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", local).mustRun(t))
	if len(layers) < 3 {
		t.Fatalf("built image has %d layers, want at least 3", len(layers))
	}
	imageID := strings.TrimSpace(d("image", "inspect", "--format", "{{.Id}}", local).mustRun(t))

	// First push uploads every layer.
	d("image", "tag", local, repo+":v1").mustRun(t)
	out := d("image", "push", repo+":v1").mustRun(t)
	if n := countLines(out, ": Pushed"); n != len(layers) {
		t.Errorf("first push: %d layers Pushed, want %d", n, len(layers))
	}
	digest := checkPushDigest(t, out, "v1", "")

	// Second push finds every layer in place.
	out = d("image", "push", repo+":v1").mustRun(t)
	if n := countLines(out, ": Layer already exists"); n != len(layers) || strings.Contains(out, ": Pushed") {
		t.Errorf("second push: %d layers already existed (want %d) and Pushed appears: %v", n, len(layers), strings.Contains(out, ": Pushed"))
	}
	checkPushDigest(t, out, "v1", digest)

	// More tags for the same image.
	for _, tag := range tags[1:] {
		d("image", "tag", local, repo+":"+tag).mustRun(t)
		out := d("image", "push", repo+":"+tag).mustRun(t)
		checkPushDigest(t, out, tag, digest)
	}
	checkTagList(t, srv, "gallery/ui", tags)

	// Forget the image locally, then pull it back.
	rm := []string{"image", "rm", local, base}
	for _, tag := range tags {
		rm = append(rm, repo+":"+tag)
	}
	d(rm...).mustRun(t)
	if _, err := d("image", "inspect", imageID).run(t); err == nil {
		t.Fatalf("image %s still present locally; the pull below would prove nothing", imageID)
	}
	out = d("image", "pull", repo+":v1").mustRun(t)
	if !strings.Contains(out, "Digest: "+digest) {
		t.Errorf("pull did not report digest %s", digest)
	}
	if n := countLines(out, ": Pull complete"); n != len(layers) {
		t.Errorf("pull: %d layers pulled, want %d", n, len(layers))
	}
	if got := strings.TrimSpace(d("image", "inspect", "--format", "{{.Id}}", repo+":v1").mustRun(t)); got != imageID {
		t.Errorf("pulled image id %s, want %s", got, imageID)
	}
	if got := d("run", "--rm", "--network", "none", repo+":v1", "cat", "/app/hello.txt", "/app/greeting.txt").mustRun(t); got != "hello from wharf\ngreetings, registry\n" {
		t.Errorf("files in the pulled image: %q", got)
	}

	// Build on top of a tag that is only in the registry, and push the result.
	appCtx := writeBuildContext(t, map[string]string{
		"Dockerfile": "FROM " + repo + ":2\n" +
			"RUN echo built on top > /app/child.txt\n",
	})
	d("build", "--network", "none", "-t", app, appCtx).mustRun(t)
	out = d("image", "push", app).mustRun(t)
	if n := countLines(out, ": Pushed"); n != 1 {
		t.Errorf("app push: %d layers Pushed, want 1 (the base layers are already in the registry)", n)
	}
	checkPushDigest(t, out, "v1", "")
}

// requireStaticBusybox finds a statically linked busybox (Debian's
// busybox-static); a dynamic one would not run inside a bare rootfs.
func requireStaticBusybox(t *testing.T) string {
	t.Helper()
	p := requireTool(t, "busybox")
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("busybox at %s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatalf("busybox at %s is dynamically linked; install busybox-static (test/e2e/setup.sh)", p)
		}
	}
	return p
}

// busyboxRootfsTar returns a tar of a minimal root filesystem: busybox,
// links to the applets the build steps use, and a file unique to this run
// so that no image left on the engine shares its layers (the pull below
// must download every layer).
func busyboxRootfsTar(t *testing.T, busybox string) []byte {
	t.Helper()
	bin, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	runID := []byte(rand.Text() + "\n")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = mtime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"bin/", "etc/", "tmp/"} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))}, bin)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/wharf-e2e-run", Mode: 0o644, Size: int64(len(runID))}, runID)
	for _, applet := range []string{"sh", "cat", "echo", "ls", "mkdir", "true"} {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}, nil)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeBuildContext writes files into a new directory and returns it.
func writeBuildContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkPushDigest finds the final "TAG: digest: sha256:… size: N" line of a
// push and returns the digest; if want is set, the digest must equal it.
func checkPushDigest(t *testing.T, out, tag, want string) string {
	t.Helper()
	m := pushDigestLine.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("push of %s printed no %q line", tag, "TAG: digest: sha256:… size: N")
	}
	last := m[len(m)-1]
	if last[1] != tag {
		t.Errorf("push digest line names tag %q, want %q", last[1], tag)
	}
	if want != "" && last[2] != want {
		t.Errorf("push of %s: digest %s, want %s", tag, last[2], want)
	}
	return last[2]
}

// checkTagList asks wharf itself which tags a repository has.
func checkTagList(t *testing.T, srv *wharfServer, repo string, want []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/"+repo+"/tags/list", nil)
	if err != nil {
		t.Fatal(err)
	}
	// An open server ignores the credentials; an authenticating one needs them.
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("GET /v2/%s/tags/list: %s: %v", repo, resp.Status, err)
	}
	got := slices.Sorted(slices.Values(list.Tags))
	want = slices.Sorted(slices.Values(want))
	if list.Name != repo || !slices.Equal(got, want) {
		t.Errorf("tags/list = %s %v, want %s %v", list.Name, got, repo, want)
	}
}

// countLines counts the lines of out that end with suffix.
func countLines(out, suffix string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(strings.TrimSpace(line), suffix) {
			n++
		}
	}
	return n
}
