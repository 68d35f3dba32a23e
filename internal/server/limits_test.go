package server_test

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// stallRequest opens a connection, sends head and the first bytes of a
// longer body, and leaves it there; closing the connection ends it.
func stallRequest(t *testing.T, base, head, partialBody string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\n"+partialBody); err != nil {
		t.Fatal(err)
	}
	return conn
}

// startUpload opens an upload session with a POST to url (with an
// Authorization header unless authorization is empty) and returns its
// Location.
func startUpload(t *testing.T, url, authorization string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST uploads: %s", resp.Status)
	}
	return resp.Header.Get("Location")
}

// stallPatch sends a PATCH of session location whose body stops after a
// few of its 100 bytes (see stallRequest).
func stallPatch(t *testing.T, base, location, authorization string) net.Conn {
	t.Helper()
	head := "PATCH " + location + " HTTP/1.1\r\nHost: wharf\r\n"
	if authorization != "" {
		head += "Authorization: " + authorization + "\r\n"
	}
	return stallRequest(t, base, head+"Content-Length: 100\r\n", "a few bytes")
}

// statusOf is the status of a bodiless request.
func statusOf(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// awaitLimited waits until GET url is refused with 429 (limited) or is
// not (!limited): a slot is taken or freed by another connection's
// handler, which the test cannot watch directly.
func awaitLimited(t *testing.T, url string, limited bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if (statusOf(t, http.MethodGet, url) == http.StatusTooManyRequests) == limited {
			return
		}
		time.Sleep(5 * time.Millisecond) // between polls, not a wait for time
	}
	t.Fatalf("GET %s: still limited=%v after 20s", url, !limited)
}

// holdSlot sends a stalled request (stall) until it holds the slot that
// GET url needs, and returns its connection. The polls that watch for the
// slot take it for a moment themselves, and a stalled request arriving in
// that moment is refused with 429 at once: its connection then has an
// answer, and it is sent again.
func holdSlot(t *testing.T, url string, stall func() net.Conn) net.Conn {
	t.Helper()
	conn := stall()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if statusOf(t, http.MethodGet, url) == http.StatusTooManyRequests {
			return conn
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		if n, _ := conn.Read(make([]byte, 1)); n > 0 {
			conn.Close()
			conn = stall()
		}
	}
	t.Fatalf("GET %s: never limited by the stalled request in 20s", url)
	return nil
}

// The concurrency limit covers every route, in two pools: registry
// clients (the distribution API and /token) and the web (UI, Hub JSON
// API, metrics). Filling one leaves the other, and health checks, alone.
func TestConcurrencyLimit_WebAndRegistryPoolsApart(t *testing.T) {
	s := registrytest.NewServer(t, registrytest.WithAuth("pool-password"),
		registrytest.WithConfig(func(c *config.Config) { c.Limits.MaxConcurrentRequests = 1 }))
	web := []string{"/", "/v2/repositories/admin/", "/metrics"}
	registry := []string{"/v2/", "/token?service=wharf"}
	checkOthers := func(t *testing.T, free []string) {
		t.Helper()
		for _, path := range append(free, "/healthz", "/readyz") {
			if code := statusOf(t, http.MethodGet, s.URL+path); code == http.StatusTooManyRequests || code >= 500 {
				t.Errorf("GET %s = %d while the other pool is full", path, code)
			}
		}
	}

	// A Hub API login whose JSON body stalls holds the web slot.
	login := holdSlot(t, s.URL+web[0], func() net.Conn {
		return stallRequest(t, s.URL, "POST /v2/users/login HTTP/1.1\r\nHost: wharf\r\nContent-Type: application/json\r\nContent-Length: 100\r\n",
			`{"username": "admin", `)
	})
	for _, path := range web {
		if code := statusOf(t, http.MethodGet, s.URL+path); code != http.StatusTooManyRequests {
			t.Errorf("GET %s = %d with the web pool full, want 429", path, code)
		}
	}
	checkOthers(t, registry)
	login.Close()
	awaitLimited(t, s.URL+web[0], false)

	// An upload whose body stalls holds the registry slot.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pool-password"))
	location := startUpload(t, s.URL+"/v2/admin/app/blobs/uploads/", basic)
	holdSlot(t, s.URL+registry[0], func() net.Conn { return stallPatch(t, s.URL, location, basic) })
	for _, path := range registry {
		if code := statusOf(t, http.MethodGet, s.URL+path); code != http.StatusTooManyRequests {
			t.Errorf("GET %s = %d with the registry pool full, want 429", path, code)
		}
	}
	checkOthers(t, web)
}

// A request refused for want of a slot is answered at once, and its
// connection closed, even while its body is still to come: net/http would
// otherwise read the rest of the body before sending the 429, and a client
// that stalls would wait for it until the idle cutoff (a minute).
func TestConcurrencyLimit_RefusesAStalledBodyAtOnce(t *testing.T) {
	s := registrytest.NewServer(t, registrytest.WithConfig(func(c *config.Config) { c.Limits.MaxConcurrentRequests = 1 }))
	// A fresh session for each try: its POST takes the slot for a moment
	// too, before the stall.
	holdSlot(t, s.URL+"/v2/", func() net.Conn {
		return stallPatch(t, s.URL, startUpload(t, s.URL+"/v2/team/app/blobs/uploads/", ""), "")
	})

	// The slot is held: a second stalled upload is refused.
	conn := stallPatch(t, s.URL, "/v2/team/app/blobs/uploads/any", "")
	// A bound on waiting for the answer, far below the idle cutoff.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a refused request whose body stalls: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !resp.Close || !strings.Contains(string(body), "TOOMANYREQUESTS") {
		t.Errorf("answer %s, close=%v, body %s; want 429, the connection closed, TOOMANYREQUESTS", resp.Status, resp.Close, body)
	}
}
