package client

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

type readCloser = io.ReadCloser

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

// tarFiles reads an archive into name → content.
func tarFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		files[h.Name] = c
	}
}

func TestImageSave_DockerFormat(t *testing.T) {
	st := galleryStore(t)
	var buf bytes.Buffer
	if err := ImageSave(context.Background(), st, []string{"image-gallery", "gallery/api"}, &buf); err != nil {
		t.Fatal(err)
	}
	files := tarFiles(t, buf.Bytes())
	for _, name := range []string{"manifest.json", "repositories", "index.json", "oci-layout"} {
		if _, ok := files[name]; !ok {
			t.Errorf("archive has no %s", name)
		}
	}
	var ms []dockerManifest
	if err := json.Unmarshal(files["manifest.json"], &ms); err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("manifest.json has %d entries", len(ms))
	}
	if !slices.Equal(ms[0].RepoTags, []string{"image-gallery:latest"}) || !slices.Equal(ms[1].RepoTags, []string{"gallery/api:2", "gallery/api:2.1.106"}) {
		t.Errorf("RepoTags = %v, %v", ms[0].RepoTags, ms[1].RepoTags)
	}
	for _, m := range ms {
		for _, p := range append([]string{m.Config}, m.Layers...) {
			if _, ok := files[p]; !ok {
				t.Errorf("manifest.json names %s, which the archive lacks", p)
			}
		}
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(files["repositories"], &repos); err != nil || repos["gallery/api"]["2.1.106"] == "" {
		t.Errorf("repositories = %s (%v)", files["repositories"], err)
	}
}

func TestImageSaveLoad_RoundTripKeepsDigests(t *testing.T) {
	ctx := context.Background()
	src := galleryStore(t)
	var buf bytes.Buffer
	if err := ImageSave(ctx, src, []string{"image-gallery", "dockerid/image-gallery:v1", "gallery/api:2"}, &buf); err != nil {
		t.Fatal(err)
	}
	dst := newTestStore(t)
	var out bytes.Buffer
	if err := ImageLoad(ctx, dst, bytes.NewReader(buf.Bytes()), &out); err != nil {
		t.Fatal(err)
	}
	want := "Loaded image: image-gallery:latest\nLoaded image: dockerid/image-gallery:v1\nLoaded image: gallery/api:2\n"
	if out.String() != want {
		t.Errorf("load printed %q, want %q", out.String(), want)
	}
	for _, r := range []string{"image-gallery", "dockerid/image-gallery:v1", "gallery/api:2"} {
		_, a, err := src.Image(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		img, b, err := dst.Image(ctx, r)
		if err != nil {
			t.Fatalf("%s after load: %v", r, err)
		}
		if a != b {
			t.Errorf("%s: manifest digest %s after load, want %s", r, b, a)
		}
		if _, err := img.Layers(); err != nil {
			t.Error(err)
		}
	}
}

// A docker save tar as docker before 25 writes it: manifest.json,
// <id>.json config, <layer>/layer.tar uncompressed, repositories; no OCI layout.
func TestImageLoad_LegacyDockerSave(t *testing.T) {
	ctx := context.Background()
	layer1 := tarBytes(t, map[string]string{"bin/app": "one"})
	layer2 := tarBytes(t, map[string]string{"etc/motd": "two"})
	d1, _, _ := v1.SHA256(bytes.NewReader(layer1))
	d2, _, _ := v1.SHA256(bytes.NewReader(layer2))
	cfg := v1.ConfigFile{Architecture: "amd64", OS: "linux", Created: v1.Time{Time: fixedNow},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{d1, d2}}, Config: v1.Config{Cmd: []string{"/bin/app"}}}
	rawCfg, _ := json.Marshal(cfg)
	id, _, _ := v1.SHA256(bytes.NewReader(rawCfg))
	manifest, _ := json.Marshal([]dockerManifest{
		{Config: id.Hex + ".json", RepoTags: []string{"legacy/app:1.0"}, Layers: []string{"aaa/layer.tar", "bbb/layer.tar"}},
		{Config: id.Hex + ".json", Layers: []string{"aaa/layer.tar", "bbb/layer.tar"}},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		b    []byte
	}{{"aaa/layer.tar", layer1}, {"bbb/layer.tar", layer2}, {id.Hex + ".json", rawCfg}, {"manifest.json", manifest}, {"repositories", []byte(`{"legacy/app":{"1.0":"bbb"}}`)}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
		tw.Write(f.b)
	}
	tw.Close()

	st := newTestStore(t)
	var out bytes.Buffer
	if err := ImageLoad(ctx, st, &buf, &out); err != nil {
		t.Fatal(err)
	}
	want := "Loaded image: legacy/app:1.0\nLoaded image ID: " + id.String() + "\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	img, _, err := st.Image(ctx, "legacy/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.ConfigName(); got != id {
		t.Errorf("image ID %s, want the config digest %s", got, id)
	}
	ls, _ := img.Layers()
	if len(ls) != 2 {
		t.Fatalf("%d layers", len(ls))
	}
	if diff, _ := ls[1].DiffID(); diff != d2 {
		t.Errorf("layer 2 diff ID %s, want %s", diff, d2)
	}
}

func TestImageLoad_OCILayoutTar(t *testing.T) {
	ctx := context.Background()
	img := fixedImage(t, fixedNow, "oci")
	dir := t.TempDir()
	lp, err := layout.Write(dir, emptyIndex())
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "localhost:5000/oci/app:v2"})); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarDir(dir, &buf); err != nil {
		t.Fatal(err)
	}
	st := newTestStore(t)
	var out bytes.Buffer
	if err := ImageLoad(ctx, st, &buf, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Loaded image: localhost:5000/oci/app:v2\n" {
		t.Errorf("printed %q", out.String())
	}
	_, d, err := st.Image(ctx, "localhost:5000/oci/app:v2")
	if want, _ := img.Digest(); err != nil || d != want {
		t.Errorf("digest %s (%v), want %s", d, err, want)
	}
}

func TestImageLoad_RejectsOtherTars(t *testing.T) {
	err := ImageLoad(context.Background(), newTestStore(t), bytes.NewReader(tarBytes(t, map[string]string{"README": "x"})), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not an image archive") {
		t.Errorf("err = %v", err)
	}
}

func TestImageImport_OneLayerImage(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	var out bytes.Buffer
	rootfs := tarBytes(t, map[string]string{"bin/app": "imported", "etc/motd": "hi"})
	if err := ImageImport(ctx, st, bytes.NewReader(rootfs), "imported:1", ImportOptions{Now: now}, &out); err != nil {
		t.Fatal(err)
	}
	img, _, err := st.Image(ctx, "imported:1")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	if out.String() != id.String()+"\n" {
		t.Errorf("printed %q, want the image ID %s", out.String(), id)
	}
	cf, _ := img.ConfigFile()
	if !cf.Created.Time.Equal(fixedNow) || cf.OS != "linux" || len(cf.History) != 1 || cf.History[0].Comment != "Imported from -" {
		t.Errorf("config = %+v", cf)
	}
	ls, _ := img.Layers()
	if len(ls) != 1 {
		t.Fatalf("%d layers, want 1", len(ls))
	}
	diff, _ := ls[0].DiffID()
	want, _, _ := v1.SHA256(bytes.NewReader(rootfs))
	if diff != want {
		t.Errorf("layer diff ID %s, want the tar's digest %s", diff, want)
	}
}

func emptyIndex() v1.ImageIndex { return empty.Index }

// tarDir writes dir's regular files to w as a tar with slash paths.
func tarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
