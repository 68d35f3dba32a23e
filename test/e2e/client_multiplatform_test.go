//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestClientMultiPlatform takes a two-platform index (the host's busybox
// image and an s390x one) through wharf: load it from an OCI layout tar,
// save it (the whole index, with manifest.json naming the host's image) and
// run it under the docker engine from that tar; push it to a real wharf
// serve (the index and both images) and pull each platform back.
func TestClientMultiPlatform(t *testing.T) {
	docker := requireDockerEngine(t)
	skopeo := requireTool(t, "skopeo")
	crane := requireTool(t, "crane")
	busybox := requireStaticBusybox(t)
	const app = "wharf-e2e-multi/app:1"
	d := func(args ...string) command {
		c := cmd(docker, args...)
		c.timeout = dockerTimeout
		return c
	}
	t.Cleanup(func() { _, _ = d("image", "rm", "-f", app).run(t) })
	work := t.TempDir()

	rootfs := busyboxRootfsTar(t, busybox)
	runID := tarFile(t, rootfs, "etc/wharf-e2e-run")
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(rootfs)), nil })
	if err != nil {
		t.Fatal(err)
	}
	hostP := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	otherP := v1.Platform{OS: "linux", Architecture: "s390x"}
	if hostP.Architecture == "s390x" {
		otherP.Architecture = "amd64"
	}
	archImage := func(p v1.Platform) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = p.OS, p.Architecture
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		return img
	}
	hostImg, otherImg := archImage(hostP), archImage(otherP)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: otherImg, Descriptor: v1.Descriptor{Platform: &otherP}},
		mutate.IndexAddendum{Add: hostImg, Descriptor: v1.Descriptor{Platform: &hostP}})
	idxDigest := mustDigest(t, idx).String()
	hostDigest, otherDigest := mustDigest(t, hostImg).String(), mustDigest(t, otherImg).String()

	// An OCI layout tar holding the index, named as containerd names it.
	dir := filepath.Join(work, "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          "docker.io/" + app,
		"org.opencontainers.image.ref.name": "1",
	})); err != nil {
		t.Fatal(err)
	}
	layoutTar := filepath.Join(work, "layout.tar")
	writeDirTar(t, dir, layoutTar)

	w := newWharfClient(t)
	if out := w.cmd("image", "load", "-i", layoutTar).mustRun(t); out != "Loaded image: "+app+"\n" {
		t.Errorf("wharf load printed %q", out)
	}

	// save: the whole index, manifest.json names the host's image.
	saved := filepath.Join(work, "multi.tar")
	w.cmd("image", "save", "-o", saved, app).mustRun(t)
	var index v1.IndexManifest
	if err := json.Unmarshal([]byte(tarFile(t, mustRead(t, saved), "index.json")), &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest.String() != idxDigest {
		t.Errorf("saved index.json lists %v, want the index %s", index.Manifests, idxDigest)
	}
	var sk struct{ Architecture string }
	if err := json.Unmarshal([]byte(cmd(skopeo, "inspect", "docker-archive:"+saved).mustRun(t)), &sk); err != nil {
		t.Fatalf("skopeo inspect output: %v", err)
	}
	if sk.Architecture != hostP.Architecture {
		t.Errorf("skopeo sees architecture %q in the docker archive, want the host's %q", sk.Architecture, hostP.Architecture)
	}
	if out := d("load", "-i", saved).mustRun(t); !strings.Contains(out, "Loaded image: "+app) {
		t.Errorf("docker load printed %q", out)
	}
	if out := d("run", "--rm", "--network", "none", app, "/bin/cat", "/etc/wharf-e2e-run").mustRun(t); out != runID {
		t.Errorf("docker run printed %q, want %q", out, runID)
	}

	// push: the index and both images; each platform pulls back.
	srv := startWharf(t)
	repo := srv.Addr + "/multi/app"
	w.cmd("tag", app, repo+":1").mustRun(t)
	out := w.cmd("push", repo+":1").mustRun(t)
	checkPushDigest(t, out, "1", idxDigest)
	checkDigest(t, cmd(crane, "digest", "--insecure", repo+":1"), idxDigest)
	checkDigest(t, cmd(crane, "digest", "--insecure", "--platform", otherP.String(), repo+":1"), otherDigest)
	cmd(crane, "validate", "--insecure", "--remote", repo+":1").mustRun(t)
	for platform, want := range map[string]string{hostP.String(): hostDigest, otherP.String(): otherDigest} {
		fresh := newWharfClient(t)
		out := fresh.cmd("pull", "--platform", platform, repo+":1").mustRun(t)
		if got := pulledDigest(t, out); got != idxDigest {
			t.Errorf("pull --platform %s printed Digest: %s, want the index %s as docker prints it", platform, got, idxDigest)
		}
		if got := fresh.cmd("image", "inspect", "--format", "{{.Descriptor.digest}}", repo+":1").mustRun(t); strings.TrimSpace(got) != want {
			t.Errorf("pull --platform %s stored %s, want %s", platform, strings.TrimSpace(got), want)
		}
		// Like docker, the repository digest is the index's.
		if got := fresh.cmd("image", "inspect", "--format", "{{json .RepoDigests}}", repo+":1").mustRun(t); strings.TrimSpace(got) != `["`+repo+"@"+idxDigest+`"]` {
			t.Errorf("pull --platform %s: RepoDigests %s, want [%s@%s]", platform, strings.TrimSpace(got), repo, idxDigest)
		}
		// Pushed elsewhere, only that platform can go, under its own digest.
		fresh.cmd("tag", repo+":1", srv.Addr+"/multi/"+strings.ReplaceAll(platform, "/", "-")+":1").mustRun(t)
		out = fresh.cmd("push", srv.Addr+"/multi/"+strings.ReplaceAll(platform, "/", "-")+":1").mustRun(t)
		checkPushDigest(t, out, "1", want)
	}
}

// writeDirTar writes the regular files under dir into a tar at out.
func writeDirTar(t *testing.T, dir, out string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
