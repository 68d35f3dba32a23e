package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/config"
)

// pushBoth pushes content as a monolithic blob and other as a chunked
// upload to repo, and checks that both are there.
func pushBoth(client *http.Client, base, repo string, content, other []byte) error {
	do := func(method, url string, header http.Header, body []byte, want int) (http.Header, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			return nil, fmt.Errorf("%s %s: %s, want %d; %s", method, url, resp.Status, want, b)
		}
		return resp.Header, nil
	}
	d := digest.FromBytes(content)
	if _, err := do(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), nil, content, http.StatusCreated); err != nil {
		return err
	}
	h, err := do(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc := base + h.Get("Location")
	const chunks = 3
	size := (len(other) + chunks - 1) / chunks
	for from := 0; from < len(other); from += size {
		to := min(from+size, len(other))
		cr := http.Header{"Content-Range": {fmt.Sprintf("%d-%d", from, to-1)}}
		if _, err := do(http.MethodPatch, loc, cr, other[from:to], http.StatusAccepted); err != nil {
			return err
		}
	}
	od := digest.FromBytes(other)
	if _, err := do(http.MethodPut, loc+"?digest="+od.String(), nil, nil, http.StatusCreated); err != nil {
		return err
	}
	for _, b := range []struct {
		d    digest.Digest
		size int
	}{{d, len(content)}, {od, len(other)}} {
		h, err := do(http.MethodHead, base+"/v2/"+repo+"/blobs/"+b.d.String(), nil, nil, http.StatusOK)
		if err != nil {
			return err
		}
		if h.Get("Content-Length") != strconv.Itoa(b.size) {
			return fmt.Errorf("HEAD %s: Content-Length %s, want %d", b.d, h.Get("Content-Length"), b.size)
		}
	}
	return nil
}

// stillOpen reports whether the server has neither answered nor closed
// conn.
func stillOpen(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(-time.Second))
	var b [1]byte
	_, err := conn.Read(b[:])
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// Hundreds of clients that open a connection, send headers and part of a
// body, and then stop must not hold up anyone else's push: no lock, pool
// or database transaction may be held while a body is read.
func TestStalledClients_DoNotHoldUpAPush(t *testing.T) {
	// The idle timeout outlasts the test, so every stall is in place
	// while the push runs.
	srv, _ := newServer(t, "", nil, func(c *config.Config) { c.Limits.IdleTimeout = 10 * time.Minute })
	base, stop, served := serve(t, srv)
	client := &http.Client{Timeout: 60 * time.Second} // a failure bound only
	rng := rand.New(rand.NewPCG(1, 2))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	start := time.Now()
	if err := pushBoth(client, base, "push/app", blob(3<<20), blob(3<<20)); err != nil {
		t.Fatalf("push without stalled clients: %v", err)
	}
	alone := time.Since(start)

	const perKind = 20
	var conns []net.Conn
	stall := func(head, body string) { conns = append(conns, stallRequest(t, base, head, body)) }
	partial := strings.Repeat("x", 4<<10)
	d := digest.FromString("never sent").String()
	for i := range perKind {
		repo := fmt.Sprintf("stall/u%d", i)
		for _, method := range []string{http.MethodPatch, http.MethodPut} {
			resp, err := client.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			path := resp.Header.Get("Location")
			if method == http.MethodPut {
				path += "?digest=" + d
			}
			stall(method+" "+path+" HTTP/1.1\r\nHost: wharf\r\nContent-Length: 1048576\r\n", partial)
		}
		stall("POST /v2/"+repo+"/blobs/uploads/?digest="+d+" HTTP/1.1\r\nHost: wharf\r\nContent-Length: 1048576\r\n", partial)
	}
	uploads := len(conns)
	for i := range 5 * perKind {
		stall(fmt.Sprintf("PUT /v2/stall/m%d/manifests/latest HTTP/1.1\r\nHost: wharf\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2000\r\n", i),
			`{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", `)
		stall("POST /v2/users/login HTTP/1.1\r\nHost: wharf\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n", `{"username": "`)
		stall("POST /signin HTTP/1.1\r\nHost: wharf\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n", "username=")
	}
	withBodies := len(conns)
	for range 2 * perKind {
		stall("GET /v2/ HTTP/1.1\r\nHost: wharf\r\n", "X-Half-A-Header: ")
	}
	waitUploadsInFlight(t, base, uploads, 60*time.Second)

	start = time.Now()
	if err := pushBoth(client, base, "push/app", blob(3<<20), blob(3<<20)); err != nil {
		t.Fatalf("push beside %d stalled clients: %v", len(conns), err)
	}
	stalled := time.Since(start)

	open := 0
	for _, c := range conns[:withBodies] {
		if stillOpen(c) {
			open++
		}
	}
	t.Logf("push of 2×3 MiB (monolithic + 3 chunks): %v alone, %v beside %d stalled connections (%d uploads, %d other bodies, %d half headers; %d bodies still stalled after)",
		alone, stalled, len(conns), uploads, withBodies-uploads, len(conns)-withBodies, open)
	if open != withBodies {
		t.Errorf("only %d of %d stalled bodies were still open after the push: the push did not run beside them all", open, withBodies)
	}

	for _, c := range conns {
		c.Close()
	}
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("server did not stop within 60s of its stalled clients leaving")
	}
}
