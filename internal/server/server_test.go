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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/server"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func pushBlob(t *testing.T, base, repo string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob: %s", resp.Status)
	}
	return d
}

func TestHealthEndpoints(t *testing.T) {
	s := registrytest.NewServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, body := get(t, s.URL+path)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
			t.Errorf("GET %s = %d %q, want 200 ok", path, resp.StatusCode, body)
		}
	}
}

func TestBaseEndpoint_AnnouncesAPIVersion(t *testing.T) {
	s := registrytest.NewServer(t)
	resp, body := get(t, s.URL+"/v2/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" || body != "{}" {
		t.Errorf("GET /v2/ = %d, version %q, body %q", resp.StatusCode, resp.Header.Get("Docker-Distribution-API-Version"), body)
	}
}

func TestRequestID_GeneratedOrEchoed(t *testing.T) {
	s := registrytest.NewServer(t)
	resp, _ := get(t, s.URL+"/v2/")
	if id := resp.Header.Get("X-Request-Id"); len(id) < 16 {
		t.Errorf("generated X-Request-Id = %q, want a random id", id)
	}
	for in, wantEcho := range map[string]bool{"abc-123_DEF": true, "bad id with spaces": false, strings.Repeat("a", 65): false} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/v2/", nil)
		req.Header.Set("X-Request-Id", in)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); (got == in) != wantEcho || got == "" {
			t.Errorf("incoming %q: X-Request-Id %q, echo wanted %v", in, got, wantEcho)
		}
	}
}

func TestMetrics_ReportRequestsAndStoredBlobs(t *testing.T) {
	s := registrytest.NewServer(t)
	pushBlob(t, s.URL, "metrics/app", []byte("twelve bytes"))
	pushBlob(t, s.URL, "metrics/other", []byte("twelve bytes")) // same blob: counted once
	get(t, s.URL+"/v2/metrics/app/manifests/missing")

	_, body := get(t, s.URL+"/metrics")
	for _, want := range []string{
		`wharf_http_requests_total{code="201",method="POST",route="upload_start"} 2`,
		`wharf_http_requests_total{code="404",method="GET",route="manifest"} 1`,
		`wharf_http_request_duration_seconds_bucket{method="POST",route="upload_start"`,
		`wharf_http_request_bytes_total{route="upload_start"} 24`,
		`wharf_uploads_in_flight 0`,
		`wharf_blobs_stored 1`,
		`wharf_blob_bytes_stored 12`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "metrics/app") {
		t.Error("/metrics uses repository names as labels")
	}
}

func TestConcurrencyLimit_AnswersTooManyRequests(t *testing.T) {
	s := registrytest.NewServer(t, registrytest.WithConfig(func(c *config.Config) { c.Limits.MaxConcurrentRequests = 1 }))
	// Hold the only slot with an upload whose body has not finished.
	resp, err := http.Post(s.URL+"/v2/limit/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) }) // before the server's cleanup waits for this request
	req, _ := http.NewRequest(http.MethodPatch, s.URL+resp.Header.Get("Location"), pr)
	done := make(chan *http.Response, 1)
	go func() {
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- nil
			return
		}
		r.Body.Close()
		done <- r
	}()
	// Far more than socket and transport buffers hold: the write returns
	// only once the handler is reading the body, i.e. holds the slot.
	if _, err := pw.Write(make([]byte, 32<<20)); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"/v2/", "/v2/limit/app/tags/list", "/v2/limit/app/blobs/uploads/"} {
		method := http.MethodGet
		if strings.HasSuffix(path, "/uploads/") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, s.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("%s %s while the slot is held = %d, want 429", method, path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: 429 Content-Type %q, want application/json", method, path, ct)
		}
		var e struct {
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != "TOOMANYREQUESTS" || e.Errors[0].Message == "" {
			t.Errorf("%s %s: 429 body = %q, want one TOOMANYREQUESTS error with a message", method, path, body)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 429 without Retry-After", method, path)
		}
	}
	// Operations endpoints stay answerable while the API is saturated.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, _ := get(t, s.URL+path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s while the API is saturated = %d, want 200", path, resp.StatusCode)
		}
	}

	pw.Close()
	if r := <-done; r == nil || r.StatusCode != http.StatusAccepted {
		t.Errorf("held upload finished with %v, want 202", r)
	}
	// The slot is free again.
	if resp, _ := get(t, s.URL+"/v2/"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ after the upload = %d, want 200", resp.StatusCode)
	}
}

func TestServe_ShutdownLetsInFlightUploadsFinish(t *testing.T) {
	cfg := config.Default()
	cfg.Auth.Mode = config.AuthNone
	cfg.DataDir = t.TempDir()
	cfg.Resolve()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base, cancel, served := serve(t, srv)

	resp, err := http.Post(base+"/v2/shutdown/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")

	content := bytes.Repeat([]byte("wharf"), 1<<16)
	pr, pw := io.Pipe()
	patched := startPatch(base+loc, pr)
	if _, err := pw.Write(content[:1000]); err != nil {
		t.Fatal(err)
	}
	waitUploadsInFlight(t, base, 1, 5*time.Second) // the handler is reading the body
	cancel()                                       // SIGTERM arrives mid-upload
	waitRefused(t, base)                           // shutdown has begun
	if _, err := pw.Write(content[1000:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-patched; err != nil {
		t.Fatalf("in-flight PATCH during shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after shutdown, want nil", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}

	// Every byte of the PATCH was kept: a restarted wharf completes the
	// upload with the content's digest and serves it back.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	again := registrytest.NewServer(t, registrytest.WithDataDir(cfg.DataDir))
	d := digest.FromBytes(content)
	put, _ := http.NewRequest(http.MethodPut, again.URL+loc+"?digest="+d.String(), nil)
	resp, err = http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("completing the upload after restart = %s, want 201", resp.Status)
	}
	resp, body := get(t, again.URL+"/v2/shutdown/app/blobs/"+d.String())
	if resp.StatusCode != http.StatusOK || body != string(content) {
		t.Errorf("blob after restart = %d, %d bytes; want 200, %d bytes", resp.StatusCode, len(body), len(content))
	}
}

// waitUploadsInFlight polls /metrics (on a fresh connection) until the
// server reports n uploads being received, failing after within.
func waitUploadsInFlight(t *testing.T, base string, n int, within time.Duration) {
	t.Helper()
	want := "wharf_uploads_in_flight " + strconv.Itoa(n) + "\n"
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("server never reported %d uploads in flight", n)
}

// waitRefused waits until the server stops accepting connections.
func waitRefused(t *testing.T, base string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("server still accepts connections after shutdown began")
}

// startPatch sends a PATCH whose body is read from body as it is written,
// and reports on the channel once it is answered: nil for 202 Accepted.
func startPatch(url string, body io.Reader) <-chan error {
	req, _ := http.NewRequest(http.MethodPatch, url, body)
	patched := make(chan error, 1)
	go func() {
		r, err := http.DefaultClient.Do(req)
		if err == nil {
			r.Body.Close()
			if r.StatusCode != http.StatusAccepted {
				err = errors.New(r.Status)
			}
		}
		patched <- err
	}()
	return patched
}
