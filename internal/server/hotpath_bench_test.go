package server_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/server"
)

// sinkWriter is a ResponseWriter that keeps nothing, reused across
// requests, so that the benchmarks below measure the handlers and not a
// recorder.
type sinkWriter struct {
	h    http.Header
	code int
}

func (w *sinkWriter) Header() http.Header         { return w.h }
func (w *sinkWriter) WriteHeader(code int)        { w.code = code }
func (w *sinkWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkManifestByTagHandler measures the server's own work for a
// manifest GET or HEAD by tag, as operators run it (access log on, text
// format, at info level; metrics on), without the HTTP connection: the
// request is handed to the handler directly. "bare" is what the bench's
// null registry does for the same request (wharf's header lines, with a
// fixed request id, and the bytes from memory), so wharf's figure minus
// bare's is what wharf adds to a request on top of net/http's own parsing
// and writing, which both pay.
func BenchmarkManifestByTagHandler(b *testing.B) {
	h, bare, md, _ := manifestHandlers(b, io.Discard)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, c := range []struct {
			name string
			h    http.Handler
		}{{"wharf", h}, {"bare", bare}} {
			b.Run(c.name+"-"+method, func(b *testing.B) {
				req := httptest.NewRequest(method, "/v2/bench/app/manifests/latest", nil)
				req.Header.Set("Accept", v1.MediaTypeImageManifest)
				req.Header.Set("User-Agent", "docker/27.3.1 go/go1.22.7 git-commit/41ca978 os/linux arch/amd64")
				w := &sinkWriter{h: http.Header{}}
				b.ReportAllocs()
				// The handler runs on this goroutine, so this thread's CPU
				// time is its cost (cpu-ns/op), which other processes on a
				// busy machine inflate far less than ns/op.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU()
				for b.Loop() {
					clear(w.h)
					w.code = 0
					c.h.ServeHTTP(w, req)
					if w.code != 0 && w.code != http.StatusOK || w.h.Get("Docker-Content-Digest") != md {
						b.Fatalf("%s: status %d, digest %q", method, w.code, w.h.Get("Docker-Content-Digest"))
					}
				}
				b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// manifestHandlers starts wharf as operators run it (access log on, text
// format, at info level, to logTo; metrics on) with one image tagged
// bench/app:latest, and returns its handler, a bare handler that serves the
// same manifest from memory as the bench's null registry does, the
// manifest's digest and its bytes.
func manifestHandlers(b testing.TB, logTo io.Writer) (h, bare http.Handler, md string, manifest []byte) {
	cfg := config.Default()
	cfg.Auth.Mode = config.AuthNone
	cfg.DataDir = b.TempDir()
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	log := slog.New(server.NewLogHandler(logTo, false, slog.LevelInfo))
	srv, err := server.New(b.Context(), cfg, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	h = srv.Handler()

	do := func(method, path string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", v1.MediaTypeImageManifest)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	cfgBlob, layer := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), []byte("layer bytes")
	var layers string
	for i, blob := range [][]byte{cfgBlob, layer} {
		d := digest.FromBytes(blob)
		if rec := do(http.MethodPost, "/v2/bench/app/blobs/uploads/?digest="+d.String(), blob); rec.Code != http.StatusCreated {
			b.Fatalf("push blob: %d %s", rec.Code, rec.Body)
		}
		if i == 1 {
			layers = fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, v1.MediaTypeImageLayer, d, len(blob))
		}
	}
	manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[%s]}`,
		v1.MediaTypeImageManifest, v1.MediaTypeImageConfig, digest.FromBytes(cfgBlob), len(cfgBlob), layers))
	if rec := do(http.MethodPut, "/v2/bench/app/manifests/latest", manifest); rec.Code != http.StatusCreated {
		b.Fatalf("push manifest: %d %s", rec.Code, rec.Body)
	}
	md = digest.FromBytes(manifest).String()
	etag := `"` + md + `"`

	bare = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Type", v1.MediaTypeImageManifest)
		hd.Set("Content-Length", strconv.Itoa(len(manifest)))
		hd.Set("Docker-Content-Digest", md)
		hd.Set("Docker-Distribution-Api-Version", "registry/2.0")
		hd.Set("Etag", etag)
		hd.Set("X-Request-Id", "000000000000000000000000")
		if r.Method == http.MethodGet {
			_, _ = w.Write(manifest)
		}
	})
	return h, bare, md, manifest
}
