//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// buildDockerfile uses every instruction the comparison covers, two
// stages and --chown; it has no RUN, so wharf can build it too.
const buildDockerfile = `ARG BASE
FROM ${BASE} AS build
COPY src/ /out/
COPY config.ini /out/etc/

FROM ${BASE}
ENV APP_HOME=/app PATH=/usr/local/bin:/bin
LABEL org.example.team=golden version="1.0"
WORKDIR /app
COPY --from=build --chown=1000:1000 /out/ /app/
COPY --chown=1000:1000 hello.sh /app/bin/
EXPOSE 8080 9090/udp
VOLUME ["/data"]
USER 1000:1000
ENTRYPOINT ["/bin/sh", "/app/bin/hello.sh"]
CMD ["--greet"]
`

// TestImageBuildMatchesDocker builds one RUN-less Dockerfile with `docker
// build` and `wharf image build` on a base both pull from wharf, and
// compares the config fields docker users rely on and every file of the
// layers the builds added (name, type, mode, owner, content).
func TestImageBuildMatchesDocker(t *testing.T) {
	_, d, busybox := dockerWithWharf(t)
	const (
		base       = dockerRegistry + "/e2e-build/base:1"
		dockerRef  = dockerRegistry + "/e2e-build/by-docker:1"
		wharfRef   = dockerRegistry + "/e2e-build/by-wharf:1"
		wharfAgain = dockerRegistry + "/e2e-build/by-wharf:again"
	)
	t.Cleanup(func() { _, _ = d("image", "rm", "-f", base, dockerRef, wharfRef).run(t) })
	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)
	d("push", base).mustRun(t)

	ctxDir := t.TempDir()
	for name, f := range map[string]struct {
		body string
		mode os.FileMode
	}{
		"Dockerfile":       {buildDockerfile, 0o644},
		"hello.sh":         {"echo \"hello from $APP_HOME\" \"$@\"\n", 0o755},
		"config.ini":       {"[app]\nname=demo\n", 0o600},
		"src/index.html":   {"<h1>golden</h1>\n", 0o644},
		"src/lib/tool":     {"#!/bin/sh\n", 0o750},
		"src/lib/data.bin": {"\x00\x01\x02", 0o444},
		"ignored.log":      {"must not be copied", 0o644},
		".dockerignore":    {"*.log\n", 0o644},
	} {
		p := filepath.Join(ctxDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}

	d("build", "--network", "none", "--build-arg", "BASE="+base, "-t", dockerRef, ctxDir).mustRun(t)
	d("push", dockerRef).mustRun(t)

	wc := newWharfClient(t)
	wharf := func(args ...string) command {
		c := wc.cmd(args...)
		c.env = append(c.env, "SOURCE_DATE_EPOCH=1767225600")
		return c
	}
	out := wharf("image", "build", "--insecure", "--push", "--build-arg", "BASE="+base, "-t", wharfRef, ctxDir).mustRun(t)
	first := checkPushDigest(t, out, "1", "")
	out = wharf("image", "build", "--insecure", "--push", "--build-arg", "BASE="+base, "-t", wharfAgain, ctxDir).mustRun(t)
	checkPushDigest(t, out, "again", first)

	byDocker, byWharf, baseImg := fetchImage(t, dockerRef), fetchImage(t, wharfRef), fetchImage(t, base)
	dc, wc2 := configOf(t, byDocker), configOf(t, byWharf)
	for _, f := range []struct {
		name        string
		docker, got any
	}{
		{"Env", dc.Config.Env, wc2.Config.Env},
		{"Cmd", dc.Config.Cmd, wc2.Config.Cmd},
		{"Entrypoint", dc.Config.Entrypoint, wc2.Config.Entrypoint},
		{"Labels", dc.Config.Labels, wc2.Config.Labels},
		{"WorkingDir", dc.Config.WorkingDir, wc2.Config.WorkingDir},
		{"ExposedPorts", dc.Config.ExposedPorts, wc2.Config.ExposedPorts},
		{"User", dc.Config.User, wc2.Config.User},
		{"Volumes", dc.Config.Volumes, wc2.Config.Volumes},
	} {
		if !reflect.DeepEqual(f.docker, f.got) {
			t.Errorf("config %s: docker %v, wharf %v", f.name, f.docker, f.got)
		}
	}
	baseLayers := len(configOf(t, baseImg).RootFS.DiffIDs)
	dl, wl := addedFiles(t, byDocker, baseLayers), addedFiles(t, byWharf, baseLayers)
	if len(dl) < 8 {
		t.Fatalf("docker's build added only %v above the base", dl)
	}
	if !reflect.DeepEqual(dl, wl) {
		t.Errorf("layers above the base differ\ndocker:\n%s\nwharf:\n%s", strings.Join(dl, "\n"), strings.Join(wl, "\n"))
	}
	m, err := byWharf.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	bd, _ := baseImg.Digest()
	if m.Annotations["org.opencontainers.image.base.name"] != base || m.Annotations["org.opencontainers.image.base.digest"] != bd.String() {
		t.Errorf("base annotations %v, want %s@%s", m.Annotations, base, bd)
	}

	// The engine runs what wharf built.
	d("pull", wharfRef).mustRun(t)
	got := d("run", "--rm", "--network", "none", wharfRef).mustRun(t)
	if got != "hello from /app --greet\n" {
		t.Errorf("docker run of the wharf-built image printed %q", got)
	}
}

// dockerWithWharf starts wharf where docker finds it (registry.local:5000)
// and returns it, a runner of docker commands and a static busybox.
func dockerWithWharf(t *testing.T) (*wharfServer, func(args ...string) command, string) {
	t.Helper()
	requireDockerRegistryAddr(t)
	srv := startWharfAt(t, dockerListen)
	docker := requireDockerEngine(t)
	busybox := requireStaticBusybox(t)
	return srv, func(args ...string) command {
		c := cmd(docker, args...)
		c.timeout = dockerTimeout
		return c
	}, busybox
}

// fetchImage reads an image from the wharf under test.
func fetchImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(strings.Replace(ref, dockerRegistry, dockerListen, 1), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func configOf(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// addedFiles describes, layer by layer, every entry of the layers above
// the first skip: "layer N: name type mode uid:gid sha256-of-content".
func addedFiles(t *testing.T, img v1.Image, skip int) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, l := range ls[skip:] {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("layer %d: %s %c %o %d:%d %s %s", i, strings.TrimPrefix(h.Name, "./"), h.Typeflag,
				h.Mode&0o7777, h.Uid, h.Gid, h.Linkname, hex.EncodeToString(sum.Sum(nil))[:12]))
		}
		rc.Close()
	}
	slices.Sort(out) // tar order is not part of the filesystem
	return out
}

// TestImageRebaseWithDocker rebases an image docker built (so without base
// annotations: --old-base names the base) registry to registry, and has
// the engine run the result on the new base.
func TestImageRebaseWithDocker(t *testing.T) {
	_, d, busybox := dockerWithWharf(t)
	const (
		repo    = dockerRegistry + "/e2e-rebase"
		app     = repo + "/app:1"
		rebased = repo + "/app:1-rebased"
	)
	t.Cleanup(func() { _, _ = d("image", "rm", "-f", repo+"/golden:1.0", repo+"/golden:1.1", app, rebased).run(t) })
	for _, v := range []string{"1.0", "1.1"} {
		imp := d("import", "-", repo+"/golden:"+v)
		imp.stdin = bytes.NewReader(withFile(t, busyboxRootfsTar(t, busybox), "etc/golden-version", v+"\n"))
		imp.mustRun(t)
		d("push", repo+"/golden:"+v).mustRun(t)
	}
	ctxDir := writeBuildContext(t, map[string]string{
		"Dockerfile": "FROM " + repo + "/golden:1.0\nCOPY app.sh /app.sh\nCMD [\"/bin/sh\", \"/app.sh\"]\n",
		"app.sh":     "echo app on golden $(cat /etc/golden-version)\n",
	})
	d("build", "--network", "none", "-t", app, ctxDir).mustRun(t)
	d("push", app).mustRun(t)

	wc := newWharfClient(t)
	out := wc.cmd("image", "rebase", "--insecure", app, "--onto", repo+"/golden:1.1", "--old-base", repo+"/golden:1.0", "-t", rebased).mustRun(t)
	checkPushDigest(t, out, "1-rebased", "")
	d("pull", rebased).mustRun(t)
	if got := d("run", "--rm", "--network", "none", rebased).mustRun(t); got != "app on golden 1.1\n" {
		t.Errorf("the rebased image printed %q, want the new base's version", got)
	}
	m := mustManifest(t, fetchImage(t, rebased))
	if m.Annotations["org.opencontainers.image.base.name"] != repo+"/golden:1.1" {
		t.Errorf("annotations %v", m.Annotations)
	}
	// Now on 1.1, it is not on 1.0 any more; and without --old-base its
	// annotations say where it is.
	if out, err := wc.cmd("image", "rebase", "--insecure", rebased, "--onto", repo+"/golden:1.1", "--old-base", repo+"/golden:1.0").run(t); err == nil ||
		!strings.Contains(out, "not built on the old base") {
		t.Errorf("rebase off a base it is not on: %v\n%s", err, out)
	}
	wc.cmd("image", "rebase", "--insecure", rebased, "--onto", repo+"/golden:1.0", "-t", repo+"/app:back").mustRun(t)
	d("pull", repo+"/app:back").mustRun(t)
	if got := d("run", "--rm", "--network", "none", repo+"/app:back").mustRun(t); got != "app on golden 1.0\n" {
		t.Errorf("rebased back, the image printed %q", got)
	}
	_, _ = d("image", "rm", "-f", repo+"/app:back").run(t)
}

func mustManifest(t *testing.T, img v1.Image) *v1.Manifest {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// withFile returns the tar b with one more regular file.
func withFile(t *testing.T, b []byte, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
