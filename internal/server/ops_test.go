package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/server"
)

// newServer builds a wharf on dir (a fresh temp dir when empty) with
// change applied to its configuration.
func newServer(t *testing.T, dir string, log *slog.Logger, change func(*config.Config)) (*server.Server, config.Config) {
	t.Helper()
	cfg := config.Default()
	cfg.Auth.Mode = config.AuthNone
	cfg.DataDir = dir
	if dir == "" {
		cfg.DataDir = t.TempDir()
	}
	if change != nil {
		change(&cfg)
	}
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, cfg
}

// serve runs srv on a fresh loopback listener until cancel is called;
// served receives what Serve returned.
func serve(t *testing.T, srv *server.Server) (base string, cancel context.CancelFunc, served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), cancel, done
}

// logSink is a slog.Handler that hands every record's message and
// attributes to a channel, so tests can wait for a log line.
type logSink struct{ records chan map[string]string }

func newLogSink() *logSink { return &logSink{records: make(chan map[string]string, 1000)} }

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	select {
	case s.records <- m:
	default: // never block the server on a slow test
	}
	return nil
}

// await returns the first record with message msg.
func (s *logSink) await(t *testing.T, msg string) map[string]string {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-s.records:
			if m["msg"] == msg {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q log record within 5s", msg)
		}
	}
}

func TestReadyz_NotReadyWithoutBlobRoot(t *testing.T) {
	s := registrytest.NewServer(t)
	root := s.Config.Storage.Filesystem.Root
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, s.URL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz without %s = %d %q, want 503", root, resp.StatusCode, body)
	}
	// Liveness is not readiness: restarting the process would not help.
	if resp, _ := get(t, s.URL+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200 while not ready", resp.StatusCode)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, s.URL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz after the root is back = %d %q, want 200", resp.StatusCode, body)
	}
}

func TestHealthEndpoints_OnlyGET(t *testing.T) {
	s := registrytest.NewServer(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Post(s.URL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s = %d, want 405", path, resp.StatusCode)
		}
	}
}

func TestProfiles_NotOnTheRegistryPort(t *testing.T) {
	s := registrytest.NewServer(t, registrytest.WithConfig(func(c *config.Config) { c.DebugAddr = "127.0.0.1:0" }))
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine"} {
		if resp, _ := get(t, s.URL+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the registry port = %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestAccessLog_OneLinePerRequestWithItsID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(server.WithRequestID(slog.NewJSONHandler(&buf, nil)))
	srv, _ := newServer(t, "", log, nil)
	buf.Reset() // start-up lines

	req := httptest.NewRequest(http.MethodGet, "/v2/app/manifests/missing", nil)
	req.Header.Set("X-Request-Id", "trace-42")
	req.Header.Set("User-Agent", "wharf-test/1")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)

	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("got %d access-log lines, want 1:\n%s", len(lines), buf.String())
	}
	for k, want := range map[string]any{
		"request_id": "trace-42", "method": "GET", "path": "/v2/app/manifests/missing",
		"status": float64(rec.Code), "user_agent": "wharf-test/1",
	} {
		if got := lines[0][k]; got != want {
			t.Errorf("access log %s = %v, want %v", k, got, want)
		}
	}
	if rec.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", rec.Code)
	}
}

func TestMetrics_RouteLabelsStayBounded(t *testing.T) {
	s := registrytest.NewServer(t)
	get(t, s.URL+"/v2/a/b/c/manifests/v1")
	get(t, s.URL+"/v2/a/b/c/blobs/sha256:"+strings.Repeat("0", 64))
	get(t, s.URL+"/no/such/page")
	get(t, s.URL+"/healthz")

	_, body := get(t, s.URL+"/metrics")
	for _, want := range []string{
		`wharf_http_requests_total{code="404",method="GET",route="manifest"} 1`,
		`wharf_http_requests_total{code="404",method="GET",route="blob"} 1`,
		`wharf_http_requests_total{code="404",method="GET",route="other"} 1`,
		`wharf_http_requests_total{code="200",method="GET",route="healthz"} 1`,
		`wharf_http_request_duration_seconds_count{method="GET",route="manifest"} 1`,
		`wharf_blobs_stored 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{"a/b/c", "/no/such/page", strings.Repeat("0", 64)} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics has a label from the request path: %s", leak)
		}
	}
}

// TestMetrics_MethodLabelBounded: the method is client-chosen text (any
// token is a valid HTTP method), so it must not become a label value as
// is, or a client can grow the metrics without bound.
func TestMetrics_MethodLabelBounded(t *testing.T) {
	s := registrytest.NewServer(t)
	for _, m := range []string{"XYZZY1", "XYZZY2", "XYZZY3"} {
		req, _ := http.NewRequest(m, s.URL+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	_, body := get(t, s.URL+"/metrics")
	if strings.Contains(body, "XYZZY") {
		t.Errorf("/metrics keeps client-chosen methods as label values:\n%s", grep(body, "wharf_http_requests_total{code=\"405\""))
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestServe_ServesPprofOnDebugAddrOnly(t *testing.T) {
	sink := newLogSink()
	srv, _ := newServer(t, "", slog.New(sink), func(c *config.Config) { c.DebugAddr = "127.0.0.1:0" })
	base, cancel, served := serve(t, srv)

	debugAddr := sink.await(t, "pprof listening")["addr"]
	if resp, _ := get(t, "http://"+debugAddr+"/debug/pprof/"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /debug/pprof/ on %s = %d, want 200", debugAddr, resp.StatusCode)
	}
	if resp, _ := get(t, base+"/debug/pprof/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the registry port = %d, want 404", resp.StatusCode)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if c, err := net.Dial("tcp", debugAddr); err == nil {
		c.Close()
		t.Error("pprof listener still open after Serve returned")
	}
}

func TestServe_FailsWhenDebugAddrTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv, _ := newServer(t, "", nil, func(c *config.Config) { c.DebugAddr = taken.Addr().String() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(t.Context(), ln); err == nil {
		t.Fatal("Serve with a taken debug address = nil, want an error")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("registry port still open after Serve failed")
	}
}

func TestRun_FailsWhenAddrTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv, _ := newServer(t, "", nil, func(c *config.Config) { c.Addr = taken.Addr().String() })
	done := make(chan error, 1)
	go func() { done <- srv.Run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run on a taken address = nil, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run on a taken address did not return")
	}
}

// TestServe_ReturnsWhenListenerFails: if the listener dies, Serve must
// report it rather than wait for a shutdown that nobody will ask for.
func TestServe_ReturnsWhenListenerFails(t *testing.T) {
	srv, _ := newServer(t, "", nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), ln) }() // t.Context ends the goroutine at cleanup
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve on a closed listener = nil, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve on a closed listener has not returned after 5s (it waits for its context)")
	}
}

// TestServe_ShutdownTimeoutCutsOffStalledUploads: an upload whose client
// stops sending must not hold the process past shutdown_timeout.
func TestServe_ShutdownTimeoutCutsOffStalledUploads(t *testing.T) {
	// Not t.TempDir: the cut-off handler may still be cleaning up when the
	// test ends, and t.TempDir fails a test whose directory cannot be removed.
	dir, err := os.MkdirTemp("", "wharf-shutdown-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	srv, _ := newServer(t, dir, nil, func(c *config.Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	base, cancel, served := serve(t, srv)

	resp, err := http.Post(base+"/v2/stall/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	patched := startPatch(base+resp.Header.Get("Location"), pr)
	if _, err := pw.Write([]byte("a few bytes, then silence")); err != nil {
		t.Fatal(err)
	}
	waitUploadsInFlight(t, base, 1, 5*time.Second)

	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still waiting for a stalled upload 10s after shutdown began")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a 200ms timeout", took)
	}
	// The client's transport waits for its body writer; let it go.
	pw.CloseWithError(errors.New("client gives up"))
	if err := <-patched; err == nil {
		t.Error("stalled upload was accepted; want it cut off")
	}
}

// TestRequestID_DistinctPerRequest: generated ids are unique, so a log
// search by id finds one request.
func TestRequestID_DistinctPerRequest(t *testing.T) {
	s := registrytest.NewServer(t)
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.URL + "/healthz")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			seen[resp.Header.Get("X-Request-Id")] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 20 || seen[""] {
		t.Errorf("20 requests got %d distinct ids", len(seen))
	}
}
