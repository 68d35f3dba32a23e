package client

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/wharf/wharf/internal/client/store"
)

// update rewrites the package's testdata/*.golden files (go test -update).
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fixedNow is the clock every golden test runs at.
var fixedNow = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func now() time.Time { return fixedNow }

// tarBytes is a filesystem tar with the given files.
func tarBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"bin/app", "etc/motd", "README"} {
		body, ok := files[name]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// fixedImage is a deterministic image: one layer per content string.
func fixedImage(t *testing.T, created time.Time, contents ...string) v1.Image {
	t.Helper()
	img := empty.Image
	var hist []v1.History
	for i, c := range contents {
		b := tarBytes(t, map[string]string{"bin/app": c})
		l, err := tarball.LayerFromOpener(func() (rc readCloser, err error) { return nopCloser{bytes.NewReader(b)}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
		hist = append(hist, v1.History{Created: v1.Time{Time: created}, CreatedBy: "/bin/sh -c #(nop) COPY file:" + strings.Repeat("ab", 20) + " in /bin/app " + string(rune('a'+i))})
	}
	hist = append(hist, v1.History{Created: v1.Time{Time: created}, CreatedBy: `/bin/sh -c #(nop)  CMD ["/bin/app"]`, EmptyLayer: true})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Cmd = []string{"/bin/app"}
	cf.History = hist
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func newTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func putImage(t *testing.T, st *store.Store, img v1.Image, tags ...string) v1.Hash {
	t.Helper()
	ctx := context.Background()
	if err := st.WriteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	for _, tag := range tags {
		n, err := reference.ParseNormalizedNamed(tag)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Tag(ctx, reference.TagNameOnly(n), d); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// galleryStore holds the images from the sharing tutorial plus a dangling one.
func galleryStore(t *testing.T) *store.Store {
	st := newTestStore(t)
	gallery := fixedImage(t, fixedNow.Add(-72*time.Hour), "gallery v1", strings.Repeat("x", 3000))
	d := putImage(t, st, gallery, "image-gallery", "dockerid/image-gallery:v1", "registry.local:5000/gallery/ui:v1")
	n, _ := reference.ParseNormalizedNamed("registry.local:5000/gallery/ui")
	if err := st.SetRepoDigest(context.Background(), n, d); err != nil {
		t.Fatal(err)
	}
	putImage(t, st, fixedImage(t, fixedNow.Add(-90*time.Minute), "api"), "gallery/api:2.1.106", "gallery/api:2")
	putImage(t, st, fixedImage(t, fixedNow.Add(-400*24*time.Hour), "old"))
	return st
}

// golden compares got with testdata/NAME.golden (shared by the package's tests).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: output differs from %s\n--- got\n%s--- want\n%s", name, p, got, want)
	}
}

func TestImageList_Golden(t *testing.T) {
	st := galleryStore(t)
	tests := []struct {
		name string
		opts ListOptions
	}{
		{"ls", ListOptions{}},
		{"ls_filter_reference", ListOptions{Filters: []string{"reference=image-gallery", "reference=*/image-gallery"}}},
		{"ls_filter_tag_glob", ListOptions{Filters: []string{"reference=gallery/api:2*"}}},
		{"ls_repository_arg", ListOptions{Repository: "registry.local:5000/gallery/ui"}},
		{"ls_digests", ListOptions{Digests: true}},
		{"ls_quiet", ListOptions{Quiet: true}},
		{"ls_no_trunc", ListOptions{NoTrunc: true}},
		{"ls_dangling", ListOptions{Filters: []string{"dangling=true"}}},
		{"ls_format", ListOptions{Format: "{{.Repository}}:{{.Tag}} {{.ID}}"}},
		{"ls_format_table", ListOptions{Format: `table {{.Repository}}\t{{.Tag}}\t{{.CreatedAt}}\t{{.Size}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = now
			var out bytes.Buffer
			if err := ImageList(context.Background(), st, tt.opts, &out); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, out.Bytes())
		})
	}
}

func TestImageList_FiltersCombineLikeDocker(t *testing.T) {
	st := galleryStore(t)
	labelled := fixedImage(t, fixedNow.Add(-time.Hour), "labelled")
	cf, _ := labelled.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"team": "web", "tier": "front"}
	labelled, err := mutate.ConfigFile(labelled, cf)
	if err != nil {
		t.Fatal(err)
	}
	putImage(t, st, labelled, "gallery/web:1")
	tests := []struct {
		name    string
		filters []string
		want    string
	}{
		{"before an image", []string{"before=gallery/api:2"}, "dockerid/image-gallery:v1 image-gallery:latest registry.local:5000/gallery/ui:v1 <none>:<none>"},
		{"since an image", []string{"since=image-gallery"}, "gallery/web:1 gallery/api:2 gallery/api:2.1.106"},
		{"before and since", []string{"since=image-gallery", "before=gallery/web:1"}, "gallery/api:2 gallery/api:2.1.106"},
		{"several before: the oldest bound", []string{"before=gallery/web:1", "before=gallery/api:2"}, "dockerid/image-gallery:v1 image-gallery:latest registry.local:5000/gallery/ui:v1 <none>:<none>"},
		{"references OR'd, AND'd with before", []string{"reference=gallery/*", "reference=image-gallery", "before=gallery/web:1"}, "gallery/api:2 gallery/api:2.1.106 image-gallery:latest"},
		{"label key", []string{"label=team"}, "gallery/web:1"},
		{"label key=value", []string{"label=team=web"}, "gallery/web:1"},
		{"labels AND'd", []string{"label=team=web", "label=tier=back"}, ""},
		{"label wrong value", []string{"label=team=db"}, ""},
		{"dangling=false", []string{"dangling=false", "before=gallery/api:2"}, "dockerid/image-gallery:v1 image-gallery:latest registry.local:5000/gallery/ui:v1"},
		{"dangling=1", []string{"dangling=1"}, "<none>:<none>"},
		{"until a duration ago", []string{"until=48h"}, "dockerid/image-gallery:v1 image-gallery:latest registry.local:5000/gallery/ui:v1 <none>:<none>"},
		{"key case and spaces", []string{" Label = team "}, "gallery/web:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			opts := ListOptions{Filters: tt.filters, Now: now, Format: "{{.Repository}}:{{.Tag}}"}
			if err := ImageList(context.Background(), st, opts, &out); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(strings.Fields(out.String()), " "); got != tt.want {
				t.Errorf("ls --filter %q = %q, want %q", tt.filters, got, tt.want)
			}
		})
	}
}

func TestImageList_RejectsBadFiltersWithDockersMessages(t *testing.T) {
	st := galleryStore(t)
	for _, tc := range []struct{ filter, want string }{
		{"foo=bar", "invalid filter 'foo'"},
		{"dangling=maybe", "invalid filter 'dangling=[maybe]'"},
		{"dangling", `invalid argument "dangling" for "-f, --filter" flag: bad format of filter (expected name=value)`},
		{"before=nosuch:1", "No such image: nosuch:1"},
	} {
		err := ImageList(context.Background(), st, ListOptions{Filters: []string{tc.filter}}, &bytes.Buffer{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("--filter %s: err = %v, want %q", tc.filter, err, tc.want)
		}
	}
}

func TestImageHistory_Golden(t *testing.T) {
	st := galleryStore(t)
	var out bytes.Buffer
	if err := ImageHistory(context.Background(), st, "image-gallery", HistoryOptions{Now: now}, &out); err != nil {
		t.Fatal(err)
	}
	golden(t, "history", out.Bytes())
}

func TestImageTagAndRemove(t *testing.T) {
	ctx := context.Background()
	st := galleryStore(t)
	for _, tag := range []string{"dockerid/image-gallery:latest", "dockerid/image-gallery:2", "dockerid/image-gallery:2.1"} {
		if err := ImageTag(ctx, st, "dockerid/image-gallery:v1", tag, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ImageTag(ctx, st, "image-gallery", "Bad Name", &bytes.Buffer{}); err == nil {
		t.Error("tagging with an invalid name succeeded")
	}
	if err := ImageTag(ctx, st, "missing", "x", &bytes.Buffer{}); err == nil || err.Error() != "No such image: missing" {
		t.Errorf("tag missing: %v", err)
	}
	var out bytes.Buffer
	err := ImageRemove(ctx, st, []string{"dockerid/image-gallery:2", "nope"}, RemoveOptions{}, &out)
	if err == nil || err.Error() != "No such image: nope" {
		t.Errorf("err = %v", err)
	}
	if out.String() != "Untagged: dockerid/image-gallery:2\n" {
		t.Errorf("out = %q", out.String())
	}
}

func TestImageInspect_DockerFields(t *testing.T) {
	st := galleryStore(t)
	var out bytes.Buffer
	if err := ImageInspect(context.Background(), st, []string{"registry.local:5000/gallery/ui:v1"}, InspectOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d objects", len(got))
	}
	g := got[0]
	for _, k := range []string{"Id", "RepoTags", "RepoDigests", "Created", "Architecture", "Os", "Config", "RootFS", "Size"} {
		if _, ok := g[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
	tags, _ := json.Marshal(g["RepoTags"])
	if string(tags) != `["dockerid/image-gallery:v1","image-gallery:latest","registry.local:5000/gallery/ui:v1"]` {
		t.Errorf("RepoTags = %s", tags)
	}
	if ds := g["RepoDigests"].([]any); len(ds) != 1 || !strings.HasPrefix(ds[0].(string), "registry.local:5000/gallery/ui@sha256:") {
		t.Errorf("RepoDigests = %v", ds)
	}
	if rf := g["RootFS"].(map[string]any); rf["Type"] != "layers" || len(rf["Layers"].([]any)) != 2 {
		t.Errorf("RootFS = %v", rf)
	}
	out.Reset()
	if err := ImageInspect(context.Background(), st, []string{"image-gallery"}, InspectOptions{Format: "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "linux/amd64 [\"/bin/app\"]\n" {
		t.Errorf("format output = %q", out.String())
	}
}
