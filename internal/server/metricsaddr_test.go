package server_test

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// With --metrics-addr, /metrics and pprof are served there, and the
// registry's listener serves neither.
func TestServe_MetricsAndPprofOnMetricsAddrOnly(t *testing.T) {
	sink := newLogSink()
	srv, _ := newServer(t, "", slog.New(sink), func(c *config.Config) { c.MetricsAddr = "127.0.0.1:0" })
	base, cancel, served := serve(t, srv)

	ops := "http://" + sink.await(t, "metrics listening")["addr"]
	pushBlob(t, base, "ops/app", []byte("counted on the metrics listener"))
	resp, body := get(t, ops+"/metrics")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "wharf_blobs_stored 1\n") ||
		!strings.Contains(body, `wharf_http_requests_total{code="201",method="POST",route="upload_start"} 1`) {
		t.Errorf("GET /metrics on the metrics listener = %d, want 200 with the registry's metrics:\n%s", resp.StatusCode, grep(body, "wharf_"))
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine"} {
		if resp, _ := get(t, ops+path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on the metrics listener = %d, want 200", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if resp, _ := get(t, base+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the registry's listener = %d, want 404", path, resp.StatusCode)
		}
	}
	if resp, err := http.Post(ops+"/metrics", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics on the metrics listener = %v, %v; want 405", resp, err)
	} else {
		resp.Body.Close()
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(ops, "http://")); err == nil {
		c.Close()
		t.Error("metrics listener still open after Serve returned")
	}
}

// Without --metrics-addr, /metrics stays where it always was.
func TestMetrics_OnTheRegistryPortByDefault(t *testing.T) {
	s := registrytest.NewServer(t)
	if resp, body := get(t, s.URL+"/metrics"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "wharf_blobs_stored") {
		t.Errorf("GET /metrics = %d, want 200 with wharf_blobs_stored", resp.StatusCode)
	}
}

func TestServe_FailsWhenMetricsAddrTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv, _ := newServer(t, "", nil, func(c *config.Config) { c.MetricsAddr = taken.Addr().String() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(t.Context(), ln); err == nil {
		t.Fatal("Serve with a taken metrics address = nil, want an error")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("registry port still open after Serve failed")
	}
}
