package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// lineageWorld is a registry over SQLite and a filesystem blob store that
// accepts manifests whose blobs were never pushed (SparseManifests), so
// that images are made of named layers alone.
type lineageWorld struct {
	t     *testing.T
	svc   *registry.Service
	clock *clocktest.Clock
}

func newLineageWorld(t *testing.T) *lineageWorld {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	clock := clocktest.At(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "wharf.db"), log, sqldb.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	blobs, err := fs.New(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	svc := registry.New(db, blobs, log, registry.Options{SparseManifests: true, Now: clock.Now})
	return &lineageWorld{t: t, svc: svc, clock: clock}
}

func layer(name string) digest.Digest { return digest.FromString("layer " + name) }

// image returns an image manifest of the named layers, with annotations.
func image(annotations map[string]string, layers ...string) []byte {
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest,
		"config": desc{"application/vnd.oci.image.config.v1+json", digest.FromString(strings.Join(layers, ",")), 2},
		"layers": []desc{},
	}
	var ls []desc
	for _, l := range layers {
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar+gzip", layer(l), 3})
	}
	if ls != nil {
		m["layers"] = ls
	}
	if annotations != nil {
		m["annotations"] = annotations
	}
	b, _ := json.Marshal(m)
	return b
}

func (w *lineageWorld) push(repo, ref string, body []byte) (digest.Digest, error) {
	res, err := w.svc.PutManifest(w.t.Context(), repo, ref, registry.MediaTypeOCIManifest, body, nil)
	if err != nil {
		return "", err
	}
	return res.Digest, nil
}

func (w *lineageWorld) mustPush(repo, ref string, body []byte) digest.Digest {
	w.t.Helper()
	d, err := w.push(repo, ref, body)
	if err != nil {
		w.t.Fatalf("push %s:%s: %v", repo, ref, err)
	}
	return d
}

func (w *lineageWorld) policy(pattern, key, value string) {
	w.t.Helper()
	if err := w.svc.Policies().Set(w.t.Context(), pattern, map[string]string{key: value}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *lineageWorld) base(repo, ref string) *registry.BaseInfo {
	w.t.Helper()
	b, err := w.svc.ImageBase(w.t.Context(), repo, ref)
	if err != nil {
		w.t.Fatalf("ImageBase(%s:%s): %v", repo, ref, err)
	}
	return b
}

func TestLineage_FindsGoldenBaseByLayersAndGoesStaleWhenItsTagMoves(t *testing.T) {
	w := newLineageWorld(t)
	w.policy("golden/*", registry.KeyGolden, "true")
	// An unrelated image sharing the first layer must not be taken for a
	// base: it is not golden.
	w.mustPush("team/other", "v1", image(nil, "busybox", "other"))
	g10 := w.mustPush("golden/base", "1.0", image(nil, "busybox", "base-1.0"))
	w.mustPush("golden/base", "1", image(nil, "busybox", "base-1.0"))
	w.mustPush("team/app", "v1", image(nil, "busybox", "base-1.0", "app"))

	b := w.base("team/app", "v1")
	if b.Name != "golden/base" || b.Digest != g10 || b.Source != registry.SourceLayers || b.Outdated {
		t.Fatalf("base = %+v; want golden/base@%s by layers, current", b, g10)
	}
	if strings.Join(b.Tags, ",") != "1,1.0" || b.Tag != "1.0" {
		t.Errorf("base tags = %v (tag %q); want 1,1.0 described as 1.0", b.Tags, b.Tag)
	}

	w.clock.Advance(48 * time.Hour)
	g11 := w.mustPush("golden/base", "1.1", image(nil, "busybox", "base-1.1"))
	w.mustPush("golden/base", "1", image(nil, "busybox", "base-1.1"))
	w.clock.Advance(time.Hour)
	b = w.base("team/app", "v1")
	want := fmt.Sprintf("built on golden/base:1 (%s); 1 now points to 1.1, pushed 1 hour ago", g10)
	if !b.Outdated || b.Reason != want || b.Newer == nil || b.Newer.Digest != g11 || b.Newer.Tag != "1.1" {
		t.Errorf("after 1 moved, base = %+v (newer %+v); want outdated: %q", b, b.Newer, want)
	}
}

func TestLineage_HigherVersionInTheLineMakesOutdated(t *testing.T) {
	w := newLineageWorld(t)
	w.policy("golden/*", registry.KeyGolden, "true")
	w.mustPush("golden/sdk", "2.1.106", image(nil, "os", "sdk-106"))
	w.mustPush("team/app", "v1", image(nil, "os", "sdk-106", "app"))
	w.mustPush("golden/sdk", "3.0.0", image(nil, "os", "sdk-300"))
	if b := w.base("team/app", "v1"); b.Outdated {
		t.Errorf("3.0.0 is another line, yet base = %+v", b)
	}
	w.mustPush("golden/sdk", "2.1.107", image(nil, "os", "sdk-107"))
	if b := w.base("team/app", "v1"); !b.Outdated || b.Newer.Tag != "2.1.107" || !strings.Contains(b.Reason, "2.1.107 is newer in the same line") {
		t.Errorf("after 2.1.107, base = %+v; want outdated by 2.1.107", b)
	}
}

func TestLineage_AnnotationIsCheckedAgainstTheLayers(t *testing.T) {
	w := newLineageWorld(t)
	w.policy("golden/*", registry.KeyGolden, "true")
	base := w.mustPush("golden/base", "1.0", image(nil, "busybox", "base"))
	other := w.mustPush("gallery/tool", "1", image(nil, "alpine"))

	good := image(map[string]string{registry.AnnotationBaseName: "registry.local:5000/golden/base:1.0", registry.AnnotationBaseDigest: base.String()},
		"busybox", "base", "app")
	w.mustPush("team/app", "good", good)
	if b := w.base("team/app", "good"); b.Source != registry.SourceAnnotation || b.Digest != base || b.Tag != "1.0" || b.Note != "" {
		t.Errorf("annotated base = %+v; want golden/base:1.0 from the annotation", b)
	}

	// The annotation names gallery/tool, whose layers this image does not
	// start with: noted, not trusted; the layers find golden/base.
	lying := image(map[string]string{registry.AnnotationBaseName: "gallery/tool:1", registry.AnnotationBaseDigest: other.String()},
		"busybox", "base", "app2")
	w.mustPush("team/app", "lying", lying)
	b := w.base("team/app", "lying")
	if b.Source != registry.SourceLayers || b.Digest != base || !strings.Contains(b.Note, "not a prefix of this image's") {
		t.Errorf("mismatching annotation: base = %+v; want golden/base by layers with a note", b)
	}
}

func TestLineage_BackfillWhenARepositoryBecomesGoldenAndDropWhenItStops(t *testing.T) {
	w := newLineageWorld(t)
	g := w.mustPush("golden/base", "1.0", image(nil, "busybox", "base"))
	w.mustPush("team/app", "v1", image(nil, "busybox", "base", "app"))
	if b := w.base("team/app", "v1"); b.Name != "" {
		t.Fatalf("before golden/base is golden, base = %+v; want none", b)
	}
	w.policy("golden/*", registry.KeyGolden, "true")
	if b := w.base("team/app", "v1"); b.Name != "golden/base" || b.Digest != g {
		t.Errorf("after golden/* golden=true, base = %+v; want golden/base@%s", b, g)
	}
	derived, total, err := w.svc.DerivedImages(t.Context(), "golden/base", registry.DerivedQuery{})
	if err != nil || total != 1 || derived[0].Repo != "team/app" || derived[0].Tag != "v1" {
		t.Errorf("DerivedImages = %+v (%d), %v; want team/app:v1", derived, total, err)
	}
	w.policy("golden/*", registry.KeyGolden, "false")
	if b := w.base("team/app", "v1"); b.Name != "" {
		t.Errorf("after golden=false, base = %+v; want none", b)
	}
}

func TestPushGate_RequireGoldenBase(t *testing.T) {
	w := newLineageWorld(t)
	w.policy("golden/*", registry.KeyGolden, "true")
	w.policy("apps/*", registry.KeyRequireGoldenBase, "true")
	w.mustPush("golden/base", "1.0", image(nil, "busybox", "base"))
	w.mustPush("gallery/tool", "1", image(nil, "alpine"))

	if _, err := w.push("apps/web", "v1", image(nil, "busybox", "base", "web")); err != nil {
		t.Errorf("image on golden/base refused: %v", err)
	}
	cases := []struct {
		name  string
		body  []byte
		found string
	}{
		{"scratch", image(nil, "web-only"), "base found: none found"},
		{"non-golden base", image(map[string]string{registry.AnnotationBaseName: "gallery/tool:1",
			registry.AnnotationBaseDigest: digest.FromBytes(image(nil, "alpine")).String()}, "alpine", "web"), "base found: gallery/tool:1"},
	}
	for _, tc := range cases {
		_, err := w.push("apps/web", "bad", tc.body)
		var e *registry.Error
		if !errors.As(err, &e) || !errors.Is(err, registry.ErrGoldenBaseRequired) ||
			!strings.Contains(e.Message, "policy require-golden-base=true") || !strings.Contains(e.Message, tc.found) {
			t.Errorf("%s: err = %v; want ErrGoldenBaseRequired naming the policy and %q", tc.name, err, tc.found)
		}
	}
	// Outside the namespace, and in golden repositories, nothing is checked.
	if _, err := w.push("team/web", "v1", image(nil, "web-only")); err != nil {
		t.Errorf("push outside apps/*: %v", err)
	}
	w.policy("apps/*", registry.KeyAllowScratch, "true")
	if _, err := w.push("apps/web", "scratch", image(nil, "web-only")); err != nil {
		t.Errorf("scratch image with allow-scratch=true refused: %v", err)
	}
}

func TestPushGate_ChecksEachPlatformOfAnIndex(t *testing.T) {
	w := newLineageWorld(t)
	w.policy("golden/*", registry.KeyGolden, "true")
	w.mustPush("golden/base", "1.0", image(nil, "busybox", "base"))
	good := w.mustPush("apps/web", "amd64", image(nil, "busybox", "base", "amd64"))
	// A platform pushed before the gate was set: the index brings it in.
	bad := w.mustPush("apps/web", "arm64", image(nil, "arm-only"))
	w.policy("apps/*", registry.KeyRequireGoldenBase, "true")
	index := func(ds ...digest.Digest) []byte {
		var ms []map[string]any
		for _, d := range ds {
			ms = append(ms, map[string]any{"mediaType": registry.MediaTypeOCIManifest, "digest": d, "size": 1})
		}
		b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": registry.MediaTypeOCIIndex, "manifests": ms})
		return b
	}
	put := func(body []byte) error {
		_, err := w.svc.PutManifest(t.Context(), "apps/web", "multi", registry.MediaTypeOCIIndex, body, nil)
		return err
	}
	if err := put(index(good)); err != nil {
		t.Errorf("index of golden-based platforms refused: %v", err)
	}
	err := put(index(good, bad))
	if !errors.Is(err, registry.ErrGoldenBaseRequired) || !strings.Contains(err.Error(), bad.String()) {
		t.Errorf("index with a scratch platform: err = %v; want ErrGoldenBaseRequired naming %s", err, bad)
	}
}
