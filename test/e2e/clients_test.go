//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Interop tests for the OCI clients not covered elsewhere: oras, regctl
// and podman, each against a wharf with token auth on. Every client gets
// its own configuration in temporary directories, passed by flag or
// environment, so that the real user's ~/.docker, ~/.regctl and
// ~/.config/containers are never read or written.

// orasDescriptor is what `oras push|attach --format json` print, and one
// node of `oras discover --format json`.
type orasDescriptor struct {
	Reference    string            `json:"reference"`
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Referrers    []orasDescriptor  `json:"referrers"`
}

// TestOras: the oras CLI logs in with a password and with an access
// token, pushes an artifact of its own type with two files, attaches an
// SBOM to an image manifest through the referrers API, discovers it,
// pulls everything back byte for byte, lists and adds tags, and fetches
// manifests; without credentials the private repository stays shut.
func TestOras(t *testing.T) {
	orasBin := requireTool(t, "oras")
	srv := startWharfAuth(t, freeLoopbackAddr(t))
	host := srv.Addr
	addUser(t, srv, "alice", alicePassword)
	pat := createToken(t, srv, "alice", "oras", "read-write")

	regConfig := filepath.Join(t.TempDir(), "config.json")
	// No credential store of the real user may leak in.
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	// o runs an oras verb ("push", "repo tags") against wharf over plain
	// HTTP with the test's registry config; dir is its working directory.
	o := func(dir, verb string, args ...string) command {
		a := append(strings.Fields(verb), "--plain-http", "--registry-config", regConfig)
		c := cmd(orasBin, append(a, args...)...)
		c.dir, c.env = dir, env
		return c
	}
	login := func(secret string) command {
		c := o("", "login", "--username", "alice", "--password-stdin", host)
		c.stdin = strings.NewReader(secret + "\n")
		return c
	}

	if out, err := login("wrong-password").run(t); err == nil || !strings.Contains(out, "unauthorized") {
		t.Errorf("oras login with a wrong password: err=%v, output:\n%s", err, out)
	}
	if out := login(alicePassword).mustRun(t); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("oras login printed %q", out)
	}

	// An artifact of a custom type with two files, one of them binary.
	src := t.TempDir()
	files := map[string][]byte{
		"readme.txt": []byte("wharf oras interop\n"),
		"data.bin":   randomBytes(300 << 10),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const bundleType = "application/vnd.wharf.e2e.bundle.v1"
	bundle := host + "/alice/bundle"
	pushed := orasJSON[orasDescriptor](t, o(src, "push", "--format", "json", "--artifact-type", bundleType,
		bundle+":v1", "readme.txt:text/plain", "data.bin:application/octet-stream"))
	if pushed.ArtifactType != bundleType || !strings.HasPrefix(pushed.Digest, "sha256:") {
		t.Fatalf("oras push reported %+v", pushed)
	}

	// The manifest comes back with the digest it was pushed under, the
	// artifact type and both files.
	raw := o("", "manifest fetch", bundle+":v1").mustRun(t)
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(raw))); got != pushed.Digest {
		t.Errorf("oras manifest fetch: bytes hash to %s, want %s", got, pushed.Digest)
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
		Layers       []struct {
			MediaType   string            `json:"mediaType"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("oras manifest fetch printed %q: %v", raw, err)
	}
	var titles []string
	for _, l := range m.Layers {
		titles = append(titles, l.Annotations["org.opencontainers.image.title"]+"="+l.MediaType)
	}
	slices.Sort(titles)
	if want := []string{"data.bin=application/octet-stream", "readme.txt=text/plain"}; m.ArtifactType != bundleType || !slices.Equal(titles, want) {
		t.Errorf("pushed manifest: artifactType %q, layers %v; want %q, %v", m.ArtifactType, titles, bundleType, want)
	}
	desc := orasJSON[orasDescriptor](t, o("", "manifest fetch", "--descriptor", bundle+":v1"))
	if desc.Digest != pushed.Digest || desc.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("oras manifest fetch --descriptor = %+v, want digest %s", desc, pushed.Digest)
	}

	// An image manifest (image config, one tar layer) and an SBOM
	// attached to it as a referrer.
	imgDir := t.TempDir()
	config := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` +
		fmt.Sprintf("%x", sha256.Sum256(oneFileTar(t))) + `"]}}`
	sbom := []byte(`{"spdxVersion":"SPDX-2.3","name":"wharf-e2e","packages":[]}` + "\n")
	for name, b := range map[string][]byte{"config.json": []byte(config), "layer.tar": oneFileTar(t), "sbom.spdx.json": sbom} {
		if err := os.WriteFile(filepath.Join(imgDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	app := host + "/alice/app"
	image := orasJSON[orasDescriptor](t, o(imgDir, "push", "--format", "json",
		"--config", "config.json:application/vnd.oci.image.config.v1+json",
		app+":v1", "layer.tar:application/vnd.oci.image.layer.v1.tar"))
	const sbomType = "application/spdx+json"
	attached := orasJSON[orasDescriptor](t, o(imgDir, "attach", "--format", "json", "--artifact-type", sbomType,
		"--annotation", "org.example.kind=sbom", app+":v1", "sbom.spdx.json:"+sbomType))

	tree := orasJSON[orasDescriptor](t, o("", "discover", "--format", "json", app+":v1"))
	if tree.Digest != image.Digest || len(tree.Referrers) != 1 ||
		tree.Referrers[0].Digest != attached.Digest || tree.Referrers[0].ArtifactType != sbomType ||
		tree.Referrers[0].Annotations["org.example.kind"] != "sbom" {
		t.Errorf("oras discover %s:v1 = %+v, want the image %s with one %s referrer %s", app, tree, image.Digest, sbomType, attached.Digest)
	}
	filtered := orasJSON[orasDescriptor](t, o("", "discover", "--format", "json", "--artifact-type", "application/x-none", app+":v1"))
	if len(filtered.Referrers) != 0 {
		t.Errorf("oras discover filtered by an unused artifact type listed %+v", filtered.Referrers)
	}
	// oras uses the referrers API when the registry has it; otherwise it
	// keeps a sha256-<digest> tag index, which must not appear here.
	checkTags(t, o("", "repo tags", app), "v1")

	// Everything pulls back byte for byte, the referrer by its digest.
	dst := t.TempDir()
	o("", "pull", "--output", dst, bundle+":v1").mustRun(t)
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("pulled %s: %d bytes (err %v), want the %d bytes pushed", name, len(got), err, len(want))
		}
	}
	o("", "pull", "--output", dst, app+"@"+attached.Digest).mustRun(t)
	if got, err := os.ReadFile(filepath.Join(dst, "sbom.spdx.json")); err != nil || !bytes.Equal(got, sbom) {
		t.Errorf("pulled SBOM = %q (err %v), want %q", got, err, sbom)
	}

	// An access token works as the password, for reads and for writes.
	logout := cmd(orasBin, "logout", "--registry-config", regConfig, host)
	logout.env = env
	logout.mustRun(t)
	if out := login(pat).mustRun(t); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("oras login with an access token printed %q", out)
	}
	o("", "tag", bundle+":v1", "v2", "stable").mustRun(t)
	checkTags(t, o("", "repo tags", bundle), "stable", "v1", "v2")
	if d := orasJSON[orasDescriptor](t, o("", "manifest fetch", "--descriptor", bundle+":stable")); d.Digest != pushed.Digest {
		t.Errorf("%s:stable is %s, want %s", bundle, d.Digest, pushed.Digest)
	}

	// Anonymous: a registry config without credentials is refused.
	anon := cmd(orasBin, "pull", "--plain-http", "--registry-config", filepath.Join(t.TempDir(), "none.json"),
		"--output", t.TempDir(), bundle+":v1")
	anon.env = env
	if out, err := anon.run(t); err == nil || !strings.Contains(out, "denied") {
		t.Errorf("anonymous oras pull of a private repository: err=%v, output:\n%s", err, out)
	}
}

// TestRegctl: regctl logs in over plain HTTP, pushes a multi-platform
// index from an OCI layout, copies it inside wharf, lists tags, reads the
// manifest and digests back, and deletes a tag: refused with a read-write
// access token, done with a read-write-delete one.
func TestRegctl(t *testing.T) {
	regctl := requireTool(t, "regctl")
	srv := startWharfAuth(t, freeLoopbackAddr(t))
	host := srv.Addr
	addUser(t, srv, "alice", alicePassword)
	rw := createToken(t, srv, "alice", "regctl-rw", "read-write")
	rwd := createToken(t, srv, "alice", "regctl-rwd", "read-write-delete")

	// newRegctl returns a regctl runner with a config file of its own
	// (REGCTL_CONFIG) and no docker credentials (regctl reads those too).
	newRegctl := func() func(args ...string) command {
		env := []string{"REGCTL_CONFIG=" + filepath.Join(t.TempDir(), "config.json"), "DOCKER_CONFIG=" + t.TempDir()}
		return func(args ...string) command {
			c := cmd(regctl, args...)
			c.env = env
			return c
		}
	}
	r := newRegctl()
	r("registry", "set", "--tls", "disabled", host).mustRun(t)
	login := func(secret string) {
		t.Helper()
		c := r("registry", "login", host, "--user", "alice", "--pass-stdin")
		c.stdin = strings.NewReader(secret)
		c.mustRun(t)
	}
	login(alicePassword)

	// A three-platform image index in an OCI layout, pushed with regctl.
	idx, children := randomIndex(t)
	wantIndex := mustDigest(t, idx).String()
	wantRaw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	layoutDir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	repo := host + "/alice/multi"
	r("image", "copy", "ocidir://"+layoutDir+":v1", repo+":v1").mustRun(t)

	checkDigest(t, r("image", "digest", repo+":v1"), wantIndex)
	for _, p := range indexPlatforms {
		checkDigest(t, r("image", "digest", "--platform", p.String(), repo+":v1"), children[p.String()].String())
	}
	if got := r("manifest", "get", "--format", "raw-body", repo+":v1").mustRun(t); got != string(wantRaw) {
		t.Errorf("regctl manifest get returned different bytes:\n got %s\nwant %s", got, wantRaw)
	}
	if out := r("manifest", "get", repo+":v1").mustRun(t); !strings.Contains(out, wantIndex) || !strings.Contains(out, "linux/arm/v7") {
		t.Errorf("regctl manifest get does not show the index %s and its platforms:\n%s", wantIndex, out)
	}

	// Copies inside wharf: a new tag, and another repository.
	mirror := host + "/alice/mirror"
	r("image", "copy", repo+":v1", repo+":copy").mustRun(t)
	r("image", "copy", repo+":v1", mirror+":v1").mustRun(t)
	checkDigest(t, r("image", "digest", repo+":copy"), wantIndex)
	checkDigest(t, r("image", "digest", mirror+":v1"), wantIndex)
	checkDigest(t, r("image", "digest", "--platform", "linux/arm64", mirror+":v1"), children["linux/arm64"].String())
	checkTags(t, r("tag", "ls", repo), "copy", "v1")
	checkTags(t, r("tag", "ls", mirror), "v1")

	// Deleting a tag needs delete rights, which a read-write token lacks.
	// (regctl then falls back to pushing a placeholder manifest under the
	// tag and deleting that by digest, which is refused too.)
	login(rw)
	if out, err := r("tag", "delete", repo+":copy").run(t); err == nil || !strings.Contains(out, "unauthorized") {
		t.Errorf("regctl tag delete with a read-write token: err=%v, output:\n%s", err, out)
	}
	login(rwd)
	r("tag", "delete", repo+":copy").mustRun(t)
	checkTags(t, r("tag", "ls", repo), "v1")
	// Only the tag went: the index is still there, by tag and by digest.
	checkDigest(t, r("image", "digest", repo+":v1"), wantIndex)
	checkDigest(t, r("image", "digest", repo+"@"+wantIndex), wantIndex)
	checkTagList(t, srv, "alice/multi", []string{"v1"})

	// Without credentials the private repository stays shut.
	anon := newRegctl()
	anon("registry", "set", "--tls", "disabled", host).mustRun(t)
	if out, err := anon("tag", "ls", repo).run(t); err == nil || !strings.Contains(out, "unauthorized") {
		t.Errorf("anonymous regctl tag ls of a private repository: err=%v, output:\n%s", err, out)
	}
}

// TestPodman: rootful podman with its own vfs storage logs in to wharf
// with a password and with an access token, pushes an image imported
// from a busybox rootfs, and pulls it back with the same digest after
// removing it locally; logged out, the pull is refused.
//
// Only push and pull, which need no container runtime: `podman run`
// fails on the CI machine (runc is refused setrlimit RLIMIT_NPROC), and
// the registry side does not need it.
func TestPodman(t *testing.T) {
	podman := requireTool(t, "podman")
	busybox := requireStaticBusybox(t)
	srv := startWharfAuth(t, freeLoopbackAddr(t))
	host := srv.Addr
	addUser(t, srv, "alice", alicePassword)
	pat := createToken(t, srv, "alice", "podman", "read-write")

	dir := t.TempDir()
	p := podmanIn(t, podman, dir, filepath.Join(dir, "auth.json"))
	login := func(secret string) command {
		c := p("login", "--tls-verify=false", "--username", "alice", "--password-stdin", host)
		c.stdin = strings.NewReader(secret + "\n")
		return c
	}
	digestFile := filepath.Join(dir, "digest")
	push := func(ref string) string {
		t.Helper()
		p("push", "--tls-verify=false", "--digestfile", digestFile, ref).mustRun(t)
		b, err := os.ReadFile(digestFile)
		if err != nil || !strings.HasPrefix(string(b), "sha256:") {
			t.Fatalf("podman push %s wrote digest %q (%v)", ref, b, err)
		}
		return strings.TrimSpace(string(b))
	}
	localDigest := func(ref string) string {
		t.Helper()
		return strings.TrimSpace(p("image", "inspect", "--format", "{{.Digest}}", ref).mustRun(t))
	}

	const base = "localhost/wharf-e2e/podman-base:1"
	imp := p("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)

	if out, err := login("wrong-password").run(t); err == nil || !strings.Contains(out, "invalid username/password") {
		t.Errorf("podman login with a wrong password: err=%v, output:\n%s", err, out)
	}
	if out := login(alicePassword).mustRun(t); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("podman login printed %q", out)
	}
	repo := host + "/alice/podman"
	p("tag", base, repo+":v1").mustRun(t)
	digest := push(repo + ":v1")

	p("rmi", repo+":v1", base).mustRun(t)
	if out, err := p("image", "exists", repo+":v1").run(t); err == nil {
		t.Fatalf("image still present locally after podman rmi; the pull below would prove nothing:\n%s", out)
	}
	p("pull", "--tls-verify=false", repo+":v1").mustRun(t)
	if got := localDigest(repo + ":v1"); got != digest {
		t.Errorf("podman pulled %s, want %s", got, digest)
	}

	// An access token works as the password.
	p("logout", host).mustRun(t)
	if out := login(pat).mustRun(t); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("podman login with an access token printed %q", out)
	}
	p("tag", repo+":v1", repo+":v2").mustRun(t)
	if got := push(repo + ":v2"); got != digest {
		t.Errorf("podman push of the same image as v2: digest %s, want %s", got, digest)
	}
	checkTagList(t, srv, "alice/podman", []string{"v1", "v2"})

	// Logged out, the private repository is refused.
	p("logout", host).mustRun(t)
	p("rmi", repo+":v1", repo+":v2").mustRun(t)
	if out, err := p("pull", "--tls-verify=false", repo+":v1").run(t); err == nil || !strings.Contains(out, "denied") {
		t.Errorf("anonymous podman pull of a private repository: err=%v, output:\n%s", err, out)
	}
}

// podmanIn returns a runner of podman whose storage and runtime state live
// in dir, set by configuration files of its own, and whose credentials are
// authFile (REGISTRY_AUTH_FILE).
func podmanIn(t *testing.T, podman, dir, authFile string) func(args ...string) command {
	t.Helper()
	storageConf := filepath.Join(dir, "storage.conf")
	containersConf := filepath.Join(dir, "containers.conf")
	files := map[string]string{
		storageConf: fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(dir, "root"), filepath.Join(dir, "run")),
		containersConf: fmt.Sprintf("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\ntmp_dir = %q\n",
			filepath.Join(dir, "tmp")),
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"CONTAINERS_STORAGE_CONF=" + storageConf,
		"CONTAINERS_CONF=" + containersConf,
		"REGISTRY_AUTH_FILE=" + authFile,
	}
	p := func(args ...string) command {
		c := cmd(podman, args...)
		c.env = env
		return c
	}
	if out := p("info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}").mustRun(t); !strings.Contains(out, "vfs "+filepath.Join(dir, "root")) {
		t.Fatalf("podman does not use the test's storage: %q", out)
	}
	return p
}

// orasJSON runs an oras command with --format json and decodes its output.
func orasJSON[T any](t *testing.T, c command) T {
	t.Helper()
	var v T
	out := c.mustRun(t)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s printed no JSON: %v\n%s", strings.Join(c.args, " "), err, truncate(out, 2000))
	}
	return v
}

// randomBytes returns n random bytes (crypto/rand.Read never fails).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
