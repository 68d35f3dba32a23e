package build

import (
	"archive/tar"
	"errors"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// appOn is an image with one app layer (and a config change) on base.
func appOn(t *testing.T, base v1.Image) v1.Image {
	t.Helper()
	img, err := mutate.Append(base,
		mutate.Addendum{Layer: layerOf(t, file{name: "app/", typ: tar.TypeDir, mode: 0o755}, file{name: "app/run", mode: 0o755, body: "app"}),
			History: v1.History{CreatedBy: "COPY run /app/"}},
		mutate.Addendum{History: v1.History{CreatedBy: "CMD [\"/app/run\"]", EmptyLayer: true}})
	if err != nil {
		t.Fatal(err)
	}
	cf := config(t, img).DeepCopy()
	cf.Config.Cmd = []string{"/app/run"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestRebase_ReplacesTheBase(t *testing.T) {
	old := baseImage(t, v1.Config{}, layerOf(t, file{name: "etc/version", body: "1.0"}))
	newer := baseImage(t, v1.Config{Env: []string{"NEW=1"}}, layerOf(t, file{name: "etc/version", body: "1.1"}), layerOf(t, file{name: "etc/extra", body: "x"}))
	app := appOn(t, old)
	got, err := Rebase(app, old, newer, "registry.test/golden/base:1.1")
	if err != nil {
		t.Fatal(err)
	}
	gl, _ := got.Layers()
	nl, _ := newer.Layers()
	al, _ := app.Layers()
	var gd, want []v1.Hash
	for _, l := range gl {
		d, _ := l.Digest()
		gd = append(gd, d)
	}
	for _, l := range append(nl, al[1:]...) {
		d, _ := l.Digest()
		want = append(want, d)
	}
	if !slices.Equal(gd, want) {
		t.Errorf("layers %v, want the new base's then the app's %v", gd, want)
	}
	cf := config(t, got)
	nc := config(t, newer)
	ac := config(t, app)
	if !slices.Equal(cf.RootFS.DiffIDs, append(slices.Clone(nc.RootFS.DiffIDs), ac.RootFS.DiffIDs[1:]...)) {
		t.Errorf("diff_ids %v", cf.RootFS.DiffIDs)
	}
	if len(cf.History) != 4 || cf.History[0].CreatedBy != "base layer" || cf.History[2].CreatedBy != "COPY run /app/" {
		t.Errorf("history %+v", cf.History)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"/app/run"}) || len(cf.Config.Env) != 0 {
		t.Errorf("config %+v: want the app's", cf.Config)
	}
	m, _ := got.Manifest()
	nd, _ := newer.Digest()
	if m.Annotations[AnnotationBaseName] != "registry.test/golden/base:1.1" || m.Annotations[AnnotationBaseDigest] != nd.String() {
		t.Errorf("annotations %v", m.Annotations)
	}
	if files := layerFiles(t, got, 0); files[0].body != "1.1" {
		t.Errorf("first layer %v, want the new base's", files)
	}
}

func TestRebase_RefusesAnImageNotOnTheOldBase(t *testing.T) {
	old := baseImage(t, v1.Config{}, layerOf(t, file{name: "etc/version", body: "1.0"}))
	other := baseImage(t, v1.Config{}, layerOf(t, file{name: "etc/version", body: "other"}))
	app := appOn(t, other)
	if _, err := Rebase(app, old, other, "x"); !errors.Is(err, ErrNotOnBase) {
		t.Errorf("err = %v, want ErrNotOnBase", err)
	}
	big := baseImage(t, v1.Config{}, layerOf(t, file{name: "a", body: "1"}), layerOf(t, file{name: "b", body: "2"}), layerOf(t, file{name: "c", body: "3"}))
	if _, err := Rebase(app, big, other, "x"); !errors.Is(err, ErrNotOnBase) {
		t.Errorf("old base longer than the image: err = %v", err)
	}
}
