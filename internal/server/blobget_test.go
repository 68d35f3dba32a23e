package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// writeConn is a server connection that counts the bytes net/http writes
// to it in writes of at least bigWrite: a body copied a few KiB at a time
// by some wrapper would cost a system call per few KiB.
type writeConn struct {
	*net.TCPConn
	big *atomic.Int64
}

const bigWrite = 64 << 10

func (c writeConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	if len(p) >= bigWrite {
		c.big.Add(int64(n))
	}
	return n, err
}

// ReadFrom keeps net/http from reaching the TCP connection's own (and
// its sendfile) through the wrapper: what it sends that way is counted
// as written in small writes, so the test fails if a body goes that way.
func (c writeConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{c.TCPConn}, r)
}

type writeListener struct {
	net.Listener
	big *atomic.Int64
}

func (l writeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeConn{TCPConn: c.(*net.TCPConn), big: l.big}, nil
}

// Blob GETs reach the connection in large writes through every
// middleware (request id, access log, metrics, limits, idle cut-off),
// full or ranged; the access log and the metrics count every byte, and
// HEAD sends none.
func TestBlobGet_GoesOutInLargeWritesThroughEveryMiddleware(t *testing.T) {
	sink := newLogSink()
	srv, _ := newServer(t, "", slog.New(sink), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var big atomic.Int64
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, writeListener{Listener: ln, big: &big}) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()

	const size = 4 << 20
	content := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{'s', 'f'}).Read(content)
	d := digest.FromBytes(content)
	do := func(method, path string, header http.Header, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	if resp, b := do(http.MethodPost, "/v2/sf/blobs/uploads/?digest="+d.String(), nil, content); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %s %s", resp.Status, b)
	}
	blob := "/v2/sf/blobs/" + d.String()

	// The first write tops up the buffer that holds the headers.
	const headerBuf = 4 << 10
	for _, tc := range []struct {
		name     string
		rng      string
		from, to int // the bytes expected, [from, to)
		status   int
	}{
		{"whole", "", 0, size, http.StatusOK},
		{"range", "bytes=1000-3000999", 1000, 3001000, http.StatusPartialContent},
		{"suffix", "bytes=-2000000", size - 2000000, size, http.StatusPartialContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := big.Load()
			h := http.Header{}
			if tc.rng != "" {
				h.Set("Range", tc.rng)
			}
			resp, b := do(http.MethodGet, blob, h, nil)
			if resp.StatusCode != tc.status || !bytes.Equal(b, content[tc.from:tc.to]) {
				t.Fatalf("GET %s: %s, %d bytes (equal: %v); want %d and bytes %d-%d", tc.rng, resp.Status, len(b),
					bytes.Equal(b, content[tc.from:tc.to]), tc.status, tc.from, tc.to)
			}
			if got, want := big.Load()-before, int64(tc.to-tc.from-headerBuf); got < want {
				t.Errorf("%d bytes reached the connection in writes of %d bytes or more, want at least %d: a wrapper copies the body in small pieces", got, bigWrite, want)
			}
			line := awaitRequest(t, sink, http.MethodGet)
			if line["bytes_out"] != strconv.Itoa(tc.to-tc.from) || line["status"] != strconv.Itoa(tc.status) {
				t.Errorf("access log: status %s bytes_out %s, want %d and %d", line["status"], line["bytes_out"], tc.status, tc.to-tc.from)
			}
		})
	}

	before := big.Load()
	resp, b := do(http.MethodHead, blob, nil, nil)
	if resp.StatusCode != http.StatusOK || len(b) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(size) {
		t.Errorf("HEAD: %s, %d body bytes, Content-Length %s; want 200, none, %d", resp.Status, len(b), resp.Header.Get("Content-Length"), size)
	}
	if n := big.Load() - before; n != 0 {
		t.Errorf("HEAD sent %d bytes of the blob", n)
	}
	if line := awaitRequest(t, sink, http.MethodHead); line["bytes_out"] != "0" {
		t.Errorf("access log of HEAD: bytes_out %s, want 0", line["bytes_out"])
	}

	_, metrics := do(http.MethodGet, "/metrics", nil, nil)
	const series = `wharf_http_response_bytes_total{route="blob"} `
	want, got := float64(size+3000000+2000000), -1.0
	for line := range strings.Lines(string(metrics)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series); ok {
			got, _ = strconv.ParseFloat(v, 64)
		}
	}
	if got != want {
		t.Errorf("%s= %v, want %v", series, got, want)
	}
}

// awaitRequest returns the next access-log record of a method request.
func awaitRequest(t *testing.T, sink *logSink, method string) map[string]string {
	t.Helper()
	for {
		if m := sink.await(t, "request"); m["method"] == method {
			return m
		}
	}
}
