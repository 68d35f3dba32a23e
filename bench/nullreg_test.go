package main

import (
	"bytes"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/config"
	wharfserver "github.com/wharf/wharf/internal/server"
)

// The manifest rows' ceiling must put on the wire what wharf does: the
// same header lines, each of the same length (the request id's value
// differs, the Date's is the clock's), and the same body.
func TestNullRegistry_ManifestAnswerIsWharfs(t *testing.T) {
	cfg := config.Default()
	cfg.Auth.Mode = config.AuthNone
	cfg.DataDir = t.TempDir()
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := wharfserver.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	wharf := httptest.NewServer(srv.Handler())
	defer wharf.Close()
	im := manifestImage()
	c := newRegClient(wharf.URL, 1, 64<<10)
	defer c.close()
	if err := c.pushImage(t.Context(), "library/app", "latest", im, false); err != nil {
		t.Fatal(err)
	}
	var n nullRegistry
	n.setManifest(im.manifest)
	null := httptest.NewServer(&n)
	defer null.Close()

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		answer := func(base string) (http.Header, []byte) {
			req, _ := http.NewRequestWithContext(t.Context(), method, base+"/v2/library/app/manifests/latest", nil)
			req.Header.Set("Accept", v1.MediaTypeImageManifest)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %s, %v", method, base, resp.Status, err)
			}
			return resp.Header, body
		}
		w, wb := answer(wharf.URL)
		n, nb := answer(null.URL)
		if !bytes.Equal(wb, nb) {
			t.Errorf("%s: bodies differ: wharf %d bytes, null %d", method, len(wb), len(nb))
		}
		if wk, nk := slices.Sorted(maps.Keys(w)), slices.Sorted(maps.Keys(n)); !slices.Equal(wk, nk) {
			t.Fatalf("%s: header lines differ:\nwharf %q\nnull  %q", method, wk, nk)
		}
		for k := range w {
			switch {
			case k == "Date" || k == "X-Request-Id":
				if len(w.Get(k)) != len(n.Get(k)) {
					t.Errorf("%s: %s: %q and %q differ in length", method, k, w.Get(k), n.Get(k))
				}
			case w.Get(k) != n.Get(k):
				t.Errorf("%s: %s: wharf %q, null %q", method, k, w.Get(k), n.Get(k))
			}
		}
	}
}
