package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// The client scenario: the same image pushed to wharf and pulled back by
// wharf's own client and by two others, crane and skopeo, alternating.
// Each tool moves its own copy of the image (same sizes, other bytes): a
// registry or a client that has seen a blob may skip it (mounts, skopeo's
// blob-info cache, wharf's remembered origins), and that must not pass for
// speed.

// clientTools in the order of the first repetition; it rotates.
var clientTools = []string{"wharf", "crane", "skopeo"}

// clientLayers is the number of layers of the client scenario's image.
const clientLayers = 4

// findTools locates crane (on PATH, or in $(go env GOPATH)/bin where
// test/e2e/setup.sh installs it) and skopeo (apt). A missing tool is
// reported, and its rows say so; the others still run.
func findTools() (map[string]string, map[string]string) {
	paths, missing := map[string]string{}, map[string]string{}
	if p, err := exec.LookPath("crane"); err == nil {
		paths["crane"] = p
	} else if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "crane")
		if _, err := os.Stat(p); err == nil {
			paths["crane"] = p
		}
	}
	if paths["crane"] == "" {
		missing["crane"] = "crane not found on PATH nor in $(go env GOPATH)/bin: run `bash test/e2e/setup.sh`"
	}
	if p, err := exec.LookPath("skopeo"); err == nil {
		paths["skopeo"] = p
	} else {
		missing["skopeo"] = "skopeo not found on PATH: `apt-get install skopeo`"
	}
	return paths, missing
}

func (h *harness) clientScenario() *scenario {
	sz := h.plan.ClientImage
	tools, missing := findTools()
	tools["wharf"] = h.fleet.wharfBin
	what := fmt.Sprintf("an image of %s in %d layers", sizeName(sz), clientLayers)
	rows := []rowSpec{}
	n := 'a'
	for _, dir := range []struct{ key, verb string }{{"push", "push"}, {"pull", "pull"}} {
		for _, other := range []string{"crane", "skopeo"} {
			title := fmt.Sprintf("8%c. `wharf image %s` (wharf column) vs %s (reference column), %s, to/from wharf",
				n, dir.verb, otherCmd(other, dir.key), what)
			n++
			rows = append(rows, rowSpec{Metric: dir.key + "_wharf", RefMetric: dir.key + "_" + other, Unit: "MB/s",
				Higher: true, Goal: goalClient, Title: title, RefMissing: missing[other]})
		}
	}
	var seq int
	return &scenario{
		ID: "client", Title: "clients: wharf image push/pull vs crane and skopeo, " + what,
		Servers: []string{nameWharf}, Rows: rows,
		Measure: func(ctx context.Context, t *target, rep int) (sample, error) {
			s := sample{}
			host := strings.TrimPrefix(t.srv.base, "http://")
			for i := range clientTools {
				tool := clientTools[(i+rep)%len(clientTools)]
				if tools[tool] == "" {
					continue
				}
				seq++
				dir := filepath.Join(h.work, "client", fmt.Sprintf("%s-%d", tool, seq))
				push, pull, err := h.clientRound(ctx, tool, tools[tool], dir, host, uint64(seq), sz)
				_ = os.RemoveAll(dir)
				if err != nil && tool == "wharf" {
					return s, fmt.Errorf("%s: %w", tool, err)
				}
				if err != nil { // the other tool's rows lack this repetition
					h.progress("  rep %d %s failed: %v", rep+1, tool, err)
					continue
				}
				s["push_"+tool], s["pull_"+tool] = push, pull
			}
			return s, nil
		},
	}
}

// otherCmd is how the report names the other tool's command. A pull is
// timed until the pulled files are on disk (see clientRound).
func otherCmd(tool, dir string) string {
	switch {
	case tool == "crane" && dir == "push":
		return "`crane push` of an OCI layout"
	case tool == "crane":
		return "`crane pull --format oci` + fsync of what it wrote"
	case dir == "push":
		return "`skopeo copy oci:… docker://…`"
	}
	return "`skopeo copy docker://… oci:…` + fsync of what it wrote"
}

// clientRound writes the tool's copy of the image (untimed), then times its
// push to wharf and its pull back into an empty destination, and returns
// both in MB/s of image bytes (layers and config), process start included.
//
// `wharf image pull` returns once its blobs are fsynced (its store stays
// intact through a machine crash); crane returns with the image in the page
// cache and leaves the write-out to the kernel, after the clock stops. For
// the same work, another tool's pull is timed until its files are fsynced
// too (syncTree; files the tool fsynced itself cost nothing more).
func (h *harness) clientRound(ctx context.Context, tool, bin, dir, host string, seed uint64, size int64) (push, pull float64, err error) {
	ref := fmt.Sprintf("%s/bench/client-%s-%d:v1", host, tool, seed)
	layout := filepath.Join(dir, "layout")
	total, err := writeLayout(layout, seed, size, ref)
	if err != nil {
		return 0, 0, err
	}
	env := cleanEnv()
	var pushArgs, pullArgs []string
	switch tool {
	case "wharf":
		// wharf pushes from its local store: load the layout there first.
		env = append(env, "WHARF_HOME="+filepath.Join(dir, "home"))
		if err := runTool(ctx, env, tarDir(layout), bin, "image", "load"); err != nil {
			return 0, 0, fmt.Errorf("load: %w", err)
		}
		pushArgs = []string{"image", "push", "--insecure", "-q", ref}
		pullArgs = []string{"image", "pull", "--insecure", "-q", ref}
	case "crane":
		pushArgs = []string{"push", "--insecure", layout, ref}
		pullArgs = []string{"pull", "--insecure", "--format", "oci", ref, filepath.Join(dir, "pulled")}
	case "skopeo":
		pushArgs = []string{"copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout + ":v1", "docker://" + ref}
		pullArgs = []string{"copy", "--quiet", "--src-tls-verify=false", "docker://" + ref, "oci:" + filepath.Join(dir, "pulled") + ":v1"}
	}
	syncAndSettle()
	t0 := time.Now()
	if err := runTool(ctx, env, nil, bin, pushArgs...); err != nil {
		return 0, 0, fmt.Errorf("push: %w", err)
	}
	push = mbps(total, time.Since(t0))
	if tool == "wharf" {
		// Pull into an empty store, as crane and skopeo pull into an
		// empty directory.
		env[len(env)-1] = "WHARF_HOME=" + filepath.Join(dir, "home-pull")
	}
	syncAndSettle()
	t0 = time.Now()
	if err := runTool(ctx, env, nil, bin, pullArgs...); err != nil {
		return 0, 0, fmt.Errorf("pull: %w", err)
	}
	if tool != "wharf" {
		if _, err := syncTree(filepath.Join(dir, "pulled")); err != nil {
			return 0, 0, fmt.Errorf("pull: sync: %w", err)
		}
	}
	return push, mbps(total, time.Since(t0)), nil
}

// syncTree fsyncs every file under dir, four at a time as wharf's client
// does, then the directories, children first, so that the tree would
// survive a machine crash. It returns the number of files and directories
// synced.
func syncTree(dir string) (int, error) {
	var files, dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var g errgroup.Group
	g.SetLimit(4)
	for _, f := range files {
		g.Go(func() error { return fsyncPath(f) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	for _, d := range slices.Backward(dirs) {
		if err := fsyncPath(d); err != nil {
			return 0, err
		}
	}
	return len(files) + len(dirs), nil
}

func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncAndSettle writes out the previous step's dirty pages, so that no
// step pays for another's writeback.
func syncAndSettle() { _ = exec.Command("sync").Run() }

func runTool(ctx context.Context, env []string, stdin io.Reader, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		o := strings.TrimSpace(string(out))
		if len(o) > 400 {
			o = o[len(o)-400:]
		}
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, o)
	}
	return nil
}

// writeLayout writes an OCI image layout holding one image of clientLayers
// gzip layers (each a tar of one file of pseudo-random bytes, stored
// without compression so that making it costs no CPU worth mentioning and
// no tool recompresses it) totalling about size bytes, tagged v1 and named
// ref. It returns the bytes of the image's blobs.
func writeLayout(dir string, seed uint64, size int64, ref string) (int64, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return 0, err
	}
	var total int64
	var descs []v1.Descriptor
	var diffIDs []digest.Digest
	for i := range clientLayers {
		d, diffID, n, err := writeLayer(blobs, blob{Size: size / clientLayers, Seed: seed<<8 | uint64(i)})
		if err != nil {
			return 0, err
		}
		descs = append(descs, v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: n})
		diffIDs = append(diffIDs, diffID)
		total += n
	}
	cfg, _ := json.Marshal(v1.Image{
		Platform: v1.Platform{Architecture: "amd64", OS: "linux"},
		Config:   v1.ImageConfig{Labels: map[string]string{"wharf.bench.seed": strconv.FormatUint(seed, 10)}},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	man, _ := json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: descs,
	})
	total += int64(len(cfg))
	idx, _ := json.Marshal(v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(man), Size: int64(len(man)),
			Annotations: map[string]string{v1.AnnotationRefName: "v1", "io.containerd.image.name": ref}}},
	})
	for _, f := range []struct {
		path string
		b    []byte
	}{
		{filepath.Join(blobs, digest.FromBytes(cfg).Encoded()), cfg},
		{filepath.Join(blobs, digest.FromBytes(man).Encoded()), man},
		{filepath.Join(dir, "index.json"), idx},
		{filepath.Join(dir, v1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	} {
		if err := os.WriteFile(f.path, f.b, 0o644); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// writeLayer writes gzip(tar(one file with b's bytes))) into blobs and
// returns its digest, its diff ID (the tar's digest) and its size.
func writeLayer(blobs string, b blob) (digest.Digest, digest.Digest, int64, error) {
	tmp, err := os.CreateTemp(blobs, "layer-*")
	if err != nil {
		return "", "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	outer := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, outer)}
	zw, _ := gzip.NewWriterLevel(cw, gzip.NoCompression)
	inner := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, inner))
	hdr := &tar.Header{Name: "data", Mode: 0o644, Size: b.Size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return "", "", 0, err
	}
	if _, err := b.reader().WriteTo(tw); err != nil {
		return "", "", 0, err
	}
	if err := errors.Join(tw.Close(), zw.Close(), tmp.Close()); err != nil {
		return "", "", 0, err
	}
	d := digestOf(outer)
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, d.Encoded())); err != nil {
		return "", "", 0, err
	}
	return d, digestOf(inner), cw.n, nil
}

func digestOf(h hash.Hash) digest.Digest {
	return digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// tarDir streams dir as a tar archive (for `wharf image load`, which reads
// an OCI layout archive), so that the archive never lands on disk.
func tarDir(dir string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || p == dir {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			fi, err := d.Info()
			if err != nil {
				return err
			}
			hdr, err := tar.FileInfoHeader(fi, "")
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(rel)
			if d.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		pw.CloseWithError(errors.Join(err, tw.Close()))
	}()
	return pr
}
