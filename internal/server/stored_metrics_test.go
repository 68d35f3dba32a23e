package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/registry"
)

// storedGauges scrapes the two stored-blob gauges.
func (w *gcWorld) storedGauges(t *testing.T) (blobs, bytes string) {
	t.Helper()
	_, body := get(t, w.srv.URL+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "wharf_blobs_stored "); ok {
			blobs = v
		}
		if v, ok := strings.CutPrefix(l, "wharf_blob_bytes_stored "); ok {
			bytes = v
		}
	}
	return blobs, bytes
}

// The stored-blob gauges, which /metrics no longer recounts, follow every
// way a blob link comes and goes over HTTP and through `wharf gc`.
func TestMetrics_StoredGaugesFollowPushesMountsDeletesAndGC(t *testing.T) {
	w := newGCWorld(t)
	want := func(step string, blobs int, bytes int) {
		t.Helper()
		gotBlobs, gotBytes := w.storedGauges(t)
		if gotBlobs != fmt.Sprint(blobs) || gotBytes != fmt.Sprint(bytes) {
			t.Fatalf("after %s: wharf_blobs_stored %s, wharf_blob_bytes_stored %s; want %d and %d",
				step, gotBlobs, gotBytes, blobs, bytes)
		}
	}
	want("nothing", 0, 0)

	shared, own, solo := layer("shared"), layer("own"), layer("solo") // 1800, 900, 1200 bytes
	v1 := w.pushImage(t, "team/app", "v1", "", shared)
	// The config's size is whatever pushImage wrote: read it back.
	resp, config := get(t, w.srv.URL+"/v2/team/app/blobs/"+configDigest(t, w, "team/app", "v1").String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET v1's config = %d", resp.StatusCode)
	}
	configSize := len(config)
	base := configSize + len(shared)
	want("an image with one layer", 2, base)

	pushBlob(t, w.srv.URL, "team/app", own)
	want("a second blob", 3, base+len(own))
	pushBlob(t, w.srv.URL, "team/app", own)
	want("the same blob pushed again", 3, base+len(own))

	mount := "/v2/other/app/blobs/uploads/?mount=" + digest.FromBytes(shared).String() + "&from=team/app"
	if status, b := w.do(t, "POST", mount, "", nil); status != http.StatusCreated {
		t.Fatalf("mount: %d %s", status, b)
	}
	want("a mount of a stored blob", 3, base+len(own))
	pushBlob(t, w.srv.URL, "other/app", solo)
	want("a blob only other/app holds", 4, base+len(own)+len(solo))

	if status, b := w.do(t, "DELETE", "/v2/other/app/blobs/"+digest.FromBytes(shared).String(), "", nil); status != http.StatusAccepted {
		t.Fatalf("delete other/app's link to the shared layer: %d %s", status, b)
	}
	want("deleting one of two links", 4, base+len(own)+len(solo))
	if status, b := w.do(t, "DELETE", "/v2/other/app/blobs/"+digest.FromBytes(solo).String(), "", nil); status != http.StatusAccepted {
		t.Fatalf("delete solo: %d %s", status, b)
	}
	want("deleting the only link", 3, base+len(own))

	// GC prunes own (no manifest uses it), then, once v1 is deleted, the
	// image's config and layer.
	w.clock.Advance(time.Minute)
	if rep := w.collect(t, registry.GCOptions{Grace: time.Second}); rep.Links != 1 {
		t.Fatalf("gc pruned %d links, want 1", rep.Links)
	}
	want("gc of an unused link", 2, configSize+len(shared))
	if status, b := w.do(t, "DELETE", "/v2/team/app/manifests/"+v1.String(), "", nil); status != http.StatusAccepted {
		t.Fatalf("delete v1: %d %s", status, b)
	}
	w.clock.Advance(time.Minute)
	if rep := w.collect(t, registry.GCOptions{Grace: time.Second}); rep.Links != 2 {
		t.Fatalf("gc pruned %d links, want 2", rep.Links)
	}
	want("gc of a deleted image", 0, 0)

	pushBlob(t, w.srv.URL, "team/app", shared)
	want("a collected blob pushed again", 1, len(shared))
}

// configDigest returns the config digest of repo:tag.
func configDigest(t *testing.T, w *gcWorld, repo, tag string) digest.Digest {
	t.Helper()
	status, body := w.do(t, "GET", "/v2/"+repo+"/manifests/"+tag, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s:%s = %d", repo, tag, status)
	}
	var m struct {
		Config struct{ Digest digest.Digest } `json:"config"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m.Config.Digest
}

// The per-namespace gauges are labelled for the namespaces given a quota
// of their own, and follow pushes there; other namespaces get no series.
func TestMetrics_NamespaceQuotaGauges(t *testing.T) {
	w := newGCWorld(t)
	if err := w.reg.Policies().Set(t.Context(), "team/*", map[string]string{registry.KeyQuota: "1MB"}); err != nil {
		t.Fatal(err)
	}
	if err := w.reg.Policies().Set(t.Context(), "*", map[string]string{registry.KeyQuota: "10MB"}); err != nil {
		t.Fatal(err)
	}
	shared := layer("shared")
	pushBlob(t, w.srv.URL, "team/app", shared)
	pushBlob(t, w.srv.URL, "team/web", shared)
	pushBlob(t, w.srv.URL, "other/app", layer("own"))
	_, body := get(t, w.srv.URL+"/metrics")
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "wharf_namespace_") {
			lines = append(lines, l)
		}
	}
	want := []string{
		`wharf_namespace_quota_bytes{namespace="team"} 1e+06`,
		fmt.Sprintf(`wharf_namespace_used_bytes{namespace="team"} %d`, len(shared)),
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("namespace gauges:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
