package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/server"
)

// gcWorld is a running registry and offline access to its data directory,
// as `wharf gc` has beside `wharf serve`. Both read the time from clock,
// which the tests move past grace periods instead of waiting them out.
type gcWorld struct {
	srv   *registrytest.Server
	reg   *server.Registry
	clock *clocktest.Clock
}

func newGCWorld(t *testing.T) *gcWorld {
	t.Helper()
	clock := clocktest.New()
	srv := registrytest.NewServer(t, registrytest.WithClock(clock.Now))
	reg, err := server.OpenRegistry(context.Background(), srv.Config, slog.New(slog.DiscardHandler), server.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return &gcWorld{srv: srv, reg: reg, clock: clock}
}

func (w *gcWorld) do(t *testing.T, method, path, mediaType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if mediaType != "" {
		req.Header.Set("Content-Type", mediaType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
)

// pushImage pushes a config and the layers, then a manifest (tagged when
// ref is a tag, by digest otherwise; subject makes it a referrer), and
// returns the manifest's digest.
func (w *gcWorld) pushImage(t *testing.T, repo, ref string, subject digest.Digest, layers ...[]byte) digest.Digest {
	t.Helper()
	// Distinct per image: a config shared with a kept image is not freed.
	var seed []byte
	for _, l := range layers {
		seed = append(seed, l...)
	}
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"comment":%q}`, digest.FromBytes(seed))
	pushBlob(t, w.srv.URL, repo, config)
	var descs []byte
	for i, l := range layers {
		pushBlob(t, w.srv.URL, repo, l)
		if i > 0 {
			descs = append(descs, ',')
		}
		descs = fmt.Appendf(descs, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s"}`, len(l), digest.FromBytes(l))
	}
	sub := ""
	if subject != "" {
		sub = fmt.Sprintf(`,"subject":{"mediaType":%q,"size":1,"digest":"%s"}`, ociManifest, subject)
	}
	body := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"%s"},"layers":[%s]%s}`,
		ociManifest, len(config), digest.FromBytes(config), descs, sub)
	d := digest.FromBytes(body)
	if ref == "" {
		ref = d.String()
	}
	if status, b := w.do(t, "PUT", "/v2/"+repo+"/manifests/"+ref, ociManifest, body); status != http.StatusCreated {
		t.Fatalf("push %s:%s: %d %s", repo, ref, status, b)
	}
	return d
}

func (w *gcWorld) collect(t *testing.T, opts registry.GCOptions) registry.GCReport {
	t.Helper()
	rep, err := w.reg.CollectGarbage(context.Background(), opts)
	if err != nil {
		t.Fatalf("CollectGarbage(%+v): %v", opts, err)
	}
	return rep
}

// blobFile reports whether d's bytes are in the data directory.
func (w *gcWorld) blobFile(t *testing.T, d digest.Digest) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(w.srv.Config.Storage.Filesystem.Root, "blobs", string(d.Algorithm()), d.Encoded()[:2], d.Encoded()))
	return err == nil
}

// layer is a layer larger than registry.DefaultSmallBlobMax, so that its
// bytes are a file in the blob store (whose removal these tests check);
// the configs of the images they push are small and kept in the database.
func layer(seed string) []byte {
	return bytes.Repeat([]byte(seed), registry.DefaultSmallBlobMax/len(seed)+1)
}

func TestGC_DeletesWhatNoManifestReferences(t *testing.T) {
	w := newGCWorld(t)
	shared, onlyOld, orphan := layer("shared"), layer("only-old"), layer("orphan")
	w.pushImage(t, "team/app", "v1", "", shared)
	old := w.pushImage(t, "team/app", "v0", "", shared, onlyOld)
	pushBlob(t, w.srv.URL, "team/app", orphan) // a push that never sent its manifest
	if status, b := w.do(t, "DELETE", "/v2/team/app/manifests/"+old.String(), "", nil); status != http.StatusAccepted {
		t.Fatalf("delete v0: %d %s", status, b)
	}

	// Within the grace period nothing goes: it may be a push under way.
	if rep := w.collect(t, registry.GCOptions{Grace: time.Hour}); rep.Blobs != 0 || rep.Links != 0 {
		t.Fatalf("collected within the grace period: %+v", rep)
	}
	w.clock.Advance(time.Minute)
	grace := 10 * time.Millisecond
	dry := w.collect(t, registry.GCOptions{Grace: grace, DryRun: true})
	// v0's config and only-old layer, and the orphan.
	if dry.Blobs != 3 || dry.Links != 3 {
		t.Fatalf("dry run = %+v, want 3 blobs and 3 links", dry)
	}
	for _, b := range [][]byte{onlyOld, orphan} {
		if !w.blobFile(t, digest.FromBytes(b)) {
			t.Fatal("a dry run deleted a blob")
		}
	}

	rep := w.collect(t, registry.GCOptions{Grace: grace})
	if rep.Blobs != 3 || rep.Links != 3 || rep.Bytes != dry.Bytes {
		t.Fatalf("collect = %+v, want what the dry run said: %+v", rep, dry)
	}
	for name, b := range map[string][]byte{"only-old": onlyOld, "orphan": orphan} {
		d := digest.FromBytes(b)
		if w.blobFile(t, d) {
			t.Errorf("%s blob still on disk", name)
		}
		if status, _ := w.do(t, "GET", "/v2/team/app/blobs/"+d.String(), "", nil); status != http.StatusNotFound {
			t.Errorf("GET %s blob = %d, want 404", name, status)
		}
	}
	// v1 is whole.
	if status, _ := w.do(t, "GET", "/v2/team/app/manifests/v1", "", nil); status != http.StatusOK {
		t.Fatalf("v1 after gc: %d", status)
	}
	status, body := w.do(t, "GET", "/v2/team/app/blobs/"+digest.FromBytes(shared).String(), "", nil)
	if status != http.StatusOK || !bytes.Equal(body, shared) {
		t.Fatalf("v1's layer after gc: %d, %d bytes", status, len(body))
	}
	// A second run finds nothing, and the orphan can be pushed again.
	if again := w.collect(t, registry.GCOptions{Grace: grace}); again.Blobs != 0 || again.Links != 0 {
		t.Errorf("second run = %+v, want nothing", again)
	}
	pushBlob(t, w.srv.URL, "team/app", orphan)
	if status, body := w.do(t, "GET", "/v2/team/app/blobs/"+digest.FromBytes(orphan).String(), "", nil); status != http.StatusOK || !bytes.Equal(body, orphan) {
		t.Errorf("orphan pushed again: %d", status)
	}
}

func TestGC_UntaggedManifests(t *testing.T) {
	w := newGCWorld(t)
	tagged := w.pushImage(t, "team/app", "v1", "", layer("a"))
	signature := w.pushImage(t, "team/app", "", tagged, layer("sig"))
	loose := w.pushImage(t, "team/app", "", "", layer("loose"))
	child := w.pushImage(t, "team/app", "", "", layer("child"))
	index := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"size":1,"digest":"%s","platform":{"os":"linux","architecture":"arm64"}}]}`,
		ociIndex, ociManifest, child)
	if status, b := w.do(t, "PUT", "/v2/team/app/manifests/multi", ociIndex, index); status != http.StatusCreated {
		t.Fatalf("push index: %d %s", status, b)
	}
	w.clock.Advance(time.Minute)
	grace := 10 * time.Millisecond

	// Without --untagged manifests stay, and so do their blobs.
	if rep := w.collect(t, registry.GCOptions{Grace: grace}); len(rep.Manifests) != 0 || rep.Blobs != 0 {
		t.Fatalf("collected without Untagged: %+v", rep)
	}
	rep := w.collect(t, registry.GCOptions{Grace: grace, Untagged: true})
	if len(rep.Manifests) != 1 || rep.Manifests[0].Digest != loose {
		t.Fatalf("deleted %+v, want only the loose manifest %s", rep.Manifests, loose)
	}
	if rep.Blobs != 2 { // its config and layer
		t.Errorf("collected %d blobs, want 2", rep.Blobs)
	}
	for name, d := range map[string]digest.Digest{"tagged": tagged, "signature": signature, "index child": child} {
		if status, _ := w.do(t, "HEAD", "/v2/team/app/manifests/"+d.String(), "", nil); status != http.StatusOK {
			t.Errorf("%s manifest after gc: %d, want 200", name, status)
		}
	}

	// Untagging the image frees it and, in the same run, its signature,
	// once the tag history (14 days by default) no longer holds it for a
	// rollback.
	if status, b := w.do(t, "DELETE", "/v2/team/app/manifests/v1", "", nil); status != http.StatusAccepted {
		t.Fatalf("delete tag v1: %d %s", status, b)
	}
	w.clock.Advance(time.Minute)
	if rep := w.collect(t, registry.GCOptions{Grace: grace, Untagged: true}); len(rep.Manifests) != 0 {
		t.Errorf("deleted %+v inside the tag history window, want nothing", rep.Manifests)
	}
	w.clock.Advance(14 * 24 * time.Hour)
	rep = w.collect(t, registry.GCOptions{Grace: grace, Untagged: true})
	got := map[digest.Digest]bool{}
	for _, m := range rep.Manifests {
		got[m.Digest] = true
	}
	if len(got) != 2 || !got[tagged] || !got[signature] {
		t.Errorf("deleted %+v, want the untagged image and its signature", rep.Manifests)
	}
}
