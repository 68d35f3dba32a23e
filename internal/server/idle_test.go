package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// send makes one request and returns its status, headers and body.
func send(t *testing.T, method, url string, header http.Header, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// stalled sends a request whose body is prefix and then nothing, and
// returns when the server answers or drops it: its status (0 when
// dropped) and how long that took. The body is never closed, so only the
// server can end the request; failAfter bounds the wait.
func stalled(t *testing.T, method, url string, prefix []byte, failAfter time.Duration) (int, time.Duration) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	// The transport waits for its body writer even when the request is
	// cancelled; past the bound, end the body too.
	context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	req, err := http.NewRequestWithContext(ctx, method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	if _, err := pw.Write(prefix); err != nil {
		t.Fatal(err)
	}
	r := <-done
	took := time.Since(start)
	if took >= failAfter {
		t.Fatalf("%s %s: a body stalled for %v was not cut off", method, url, failAfter)
	}
	return r.code, took
}

// A request body that sends nothing for the idle timeout is cut off, and
// the upload session it was writing stays where it was recorded, so the
// client can ask where it is and carry on from there.
func TestIdleTimeout_CutsOffStalledBodiesAndSessionsResume(t *testing.T) {
	const idle = 300 * time.Millisecond
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	d := digest.FromBytes(data)
	for _, tc := range []struct {
		name string
		// path is the stalled request's; {upload} is the session's Location.
		method, path string
	}{
		{"chunk", http.MethodPatch, "{upload}"},
		{"last chunk with the digest", http.MethodPut, "{upload}?digest=" + d.String()},
		{"monolithic push", http.MethodPost, "/v2/idle/app/blobs/uploads/?digest=" + d.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := registrytest.NewServer(t, registrytest.WithConfig(func(c *config.Config) { c.Limits.IdleTimeout = idle }))
			code, h, body := send(t, http.MethodPost, s.URL+"/v2/idle/app/blobs/uploads/", nil, nil)
			if code != http.StatusAccepted {
				t.Fatalf("POST: %d %s", code, body)
			}
			upload := s.URL + h.Get("Location")
			const first = 10 << 10
			if code, h, body := send(t, http.MethodPatch, upload, http.Header{"Content-Range": {fmt.Sprintf("0-%d", first-1)}}, data[:first]); code != http.StatusAccepted || h.Get("Range") != fmt.Sprintf("0-%d", first-1) {
				t.Fatalf("first PATCH: %d, Range %q; %s", code, h.Get("Range"), body)
			}

			url := s.URL + strings.ReplaceAll(tc.path, "{upload}", h.Get("Location"))
			code, took := stalled(t, tc.method, url, data[first:first+5000], 30*time.Second)
			t.Logf("%s stalled after 5000 bytes: answered %d after %v (idle timeout %v)", tc.method, code, took, idle)
			if code >= 200 && code < 300 {
				t.Fatalf("stalled %s answered %d, want it refused", tc.method, code)
			}
			if took < idle {
				t.Errorf("stalled %s cut off after %v, before the idle timeout of %v", tc.method, took, idle)
			}

			// The session is where it was before the stalled request.
			if code, h, body := send(t, http.MethodGet, upload, nil, nil); code != http.StatusNoContent || h.Get("Range") != fmt.Sprintf("0-%d", first-1) {
				t.Fatalf("GET %s after the stall: %d, Range %q, want 204 0-%d; %s", upload, code, h.Get("Range"), first-1, body)
			}
			if code, _, body := send(t, http.MethodHead, s.URL+"/v2/idle/app/blobs/"+d.String(), nil, nil); code != http.StatusNotFound {
				t.Fatalf("HEAD blob after the stall: %d, want 404; %s", code, body)
			}
			// And carries on from there.
			if code, _, body := send(t, http.MethodPatch, upload, http.Header{"Content-Range": {fmt.Sprintf("%d-%d", first, len(data)-1)}}, data[first:]); code != http.StatusAccepted {
				t.Fatalf("PATCH resuming at %d: %d; %s", first, code, body)
			}
			if code, _, body := send(t, http.MethodPut, upload+"?digest="+d.String(), nil, nil); code != http.StatusCreated {
				t.Fatalf("PUT: %d; %s", code, body)
			}
			if code, _, body := send(t, http.MethodGet, s.URL+"/v2/idle/app/blobs/"+d.String(), nil, nil); code != http.StatusOK || body != string(data) {
				t.Fatalf("GET blob: %d, %d bytes, want 200 and the %d bytes pushed", code, len(body), len(data))
			}
		})
	}
}

// A body that keeps sending, however slowly, is not cut off: the timeout
// is for silence, not for the length of the request.
func TestIdleTimeout_SpareBodiesThatKeepSending(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := registrytest.NewServer(t, registrytest.WithConfig(func(c *config.Config) { c.Limits.IdleTimeout = idle }))
	data := bytes.Repeat([]byte("x"), 8)
	d := digest.FromBytes(data)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v2/idle/app/blobs/uploads/?digest="+d.String(), pr)
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// A byte every idle/2 makes the request last four idle timeouts. The
	// pause is the client's behaviour under test, not a wait for the server.
	start := time.Now()
	for i := range data {
		if _, err := pw.Write(data[i : i+1]); err != nil {
			t.Fatalf("write %d: %v (cut off after %v)", i, err, time.Since(start))
		}
		time.Sleep(idle / 2)
	}
	pw.Close()
	if code := <-done; code != http.StatusCreated {
		t.Fatalf("slow but steady push after %v: status %d, want 201", time.Since(start), code)
	}
}
