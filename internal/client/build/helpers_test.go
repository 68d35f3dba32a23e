package build

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// images is a Resolver over images made in the test: the role a local
// store or registry plays for a real build.
type images map[string]v1.Image

func (m images) Resolve(_ context.Context, ref string, _ v1.Platform) (v1.Image, string, error) {
	img, ok := m[ref]
	if !ok {
		return nil, "", fmt.Errorf("pull access denied for %s", ref)
	}
	return img, "registry.test/" + ref, nil
}

// file is one entry of a layer or of a test image's filesystem.
type file struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     string
	link     string
	mtime    time.Time
}

func (f file) String() string {
	return fmt.Sprintf("%s %c %o %d:%d %q%s", f.name, f.typ, f.mode, f.uid, f.gid, f.body, f.link)
}

// layerOf makes a gzip'd layer holding files, in the order given.
func layerOf(t *testing.T, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: f.name, Typeflag: typ, Mode: f.mode, Uid: f.uid, Gid: f.gid, Size: int64(len(f.body)),
			Linkname: f.link, ModTime: time.Unix(1e9, 0)}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// baseImage is an OCI image with one layer per argument and a config.
func baseImage(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "base layer"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeContext writes files (name → content; a name ending in / is a
// directory) into a new directory.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// run builds the Dockerfile in dir with images as the registry.
func run(t *testing.T, dir string, res images, mod ...func(*Options)) (v1.Image, error) {
	t.Helper()
	opts := Options{ContextDir: dir, Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		TempDir: t.TempDir(), Now: func() time.Time { return testEpoch }}
	for _, m := range mod {
		m(&opts)
	}
	if res == nil {
		res = images{}
	}
	return Build(context.Background(), res, opts)
}

// mustBuild is run that fails the test on an error.
func mustBuild(t *testing.T, dir string, res images, mod ...func(*Options)) v1.Image {
	t.Helper()
	img, err := run(t, dir, res, mod...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// config returns img's config.
func config(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// layerFiles lists the entries of layer i of img, in tar order.
func layerFiles(t *testing.T, img v1.Image, i int) []file {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(ls)
	}
	if i < 0 || i >= len(ls) {
		t.Fatalf("image has %d layers, want layer %d", len(ls), i)
	}
	rc, err := ls[i].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []file
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, file{name: h.Name, typ: h.Typeflag, mode: h.Mode, uid: h.Uid, gid: h.Gid, body: string(b),
			link: h.Linkname, mtime: h.ModTime})
	}
}

// names lists the entry names.
func names(fs []file) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.name)
	}
	return out
}

// entry finds name among fs.
func entry(t *testing.T, fs []file, name string) file {
	t.Helper()
	i := slices.IndexFunc(fs, func(f file) bool { return f.name == name })
	if i < 0 {
		t.Fatalf("no %s in layer; it has %v", name, names(fs))
	}
	return fs[i]
}
