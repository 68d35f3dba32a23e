package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestManifestByTag_HeadersAndAccessLine: the shortcuts on the manifest
// path (header values assigned by canonical key, request headers read
// without canonicalising them, one recorder shared by the request id and
// the access log) leave the answer and its access-log line complete: every
// header a client or an operator reads, and every field of the line.
func TestManifestByTag_HeadersAndAccessLine(t *testing.T) {
	var logs bytes.Buffer
	h, _, md, manifest := manifestHandlers(t, &logs)
	const ua = "docker/27.3.1 go/go1.22.7 git-commit/41ca978 os/linux arch/amd64"
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		logs.Reset()
		req := httptest.NewRequest(method, "/v2/bench/app/manifests/latest", nil)
		req.Header.Set("Accept", v1.MediaTypeImageManifest)
		req.Header.Set("User-Agent", ua)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d, want 200: %s", method, rec.Code, rec.Body)
		}
		id := rec.Header().Get("X-Request-Id")
		if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(id) {
			t.Errorf("%s: X-Request-Id %q, want 24 hex digits", method, id)
		}
		for k, want := range map[string]string{
			"Content-Type":                    v1.MediaTypeImageManifest,
			"Content-Length":                  strconv.Itoa(len(manifest)),
			"Docker-Content-Digest":           md,
			"Etag":                            `"` + md + `"`,
			"Docker-Distribution-Api-Version": "registry/2.0",
		} {
			if got := rec.Header().Values(k); len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s = %q, want [%q]", method, k, got, want)
			}
		}
		wantBody, wantOut := manifest, len(manifest)
		if method == http.MethodHead {
			wantBody, wantOut = nil, 0
		}
		if !bytes.Equal(rec.Body.Bytes(), wantBody) {
			t.Errorf("%s: body %q, want %q", method, rec.Body, wantBody)
		}
		line := regexp.MustCompile(fmt.Sprintf(`^time=\S+ level=INFO msg=request method=%s path=/v2/bench/app/manifests/latest `+
			`status=200 bytes_in=0 bytes_out=%d duration=\S+ remote=192\.0\.2\.1:1234 user_agent="%s" request_id=%s\n$`,
			method, wantOut, regexp.QuoteMeta(ua), id))
		if !line.Match(logs.Bytes()) {
			t.Errorf("%s: access log %q, want one line matching %s", method, logs.String(), line)
		}
	}

	// A conditional GET with the digest is answered 304, with the digest.
	req := httptest.NewRequest(http.MethodGet, "/v2/bench/app/manifests/latest", nil)
	req.Header.Set("If-None-Match", `"`+md+`"`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Header().Get("Docker-Content-Digest") != md {
		t.Errorf("If-None-Match: status %d, digest %q; want 304 and %s", rec.Code, rec.Header().Get("Docker-Content-Digest"), md)
	}
	// An Accept naming only other manifest types is refused.
	req = httptest.NewRequest(http.MethodGet, "/v2/bench/app/manifests/latest", nil)
	req.Header.Set("Accept", v1.MediaTypeImageIndex)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || !bytes.Contains(rec.Body.Bytes(), []byte(`"code":"MANIFEST_UNKNOWN"`)) {
		t.Errorf("Accept: index only: status %d, body %s; want 404 MANIFEST_UNKNOWN", rec.Code, rec.Body)
	}
}

// TestManifestByTag_Allocations bounds what a manifest GET by tag
// allocates in wharf's handlers (access log and metrics on): six objects,
// the request's copy with its context among them. Every allocation is
// paid again in garbage collection on the registry's hottest path.
func TestManifestByTag_Allocations(t *testing.T) {
	h, _, md, _ := manifestHandlers(t, io.Discard)
	req := httptest.NewRequest(http.MethodGet, "/v2/bench/app/manifests/latest", nil)
	req.Header.Set("Accept", v1.MediaTypeImageManifest)
	req.Header.Set("User-Agent", "docker/27.3.1")
	w := &sinkWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(1000, func() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.h.Get("Docker-Content-Digest") != md {
			t.Fatalf("digest %q, want %s", w.h.Get("Docker-Content-Digest"), md)
		}
	})
	if allocs > 6 {
		t.Errorf("%.0f allocations per GET, want ≤ 6", allocs)
	}
}
