package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// fileConn is a server connection that counts the bytes net/http hands
// it from an *os.File through ReadFrom: the path on which the kernel sends
// them with sendfile, without copying them through the process.
type fileConn struct {
	*net.TCPConn
	fromFile *atomic.Int64
}

func (c fileConn) ReadFrom(r io.Reader) (int64, error) {
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src = lr.R
	}
	_, isFile := src.(*os.File)
	n, err := c.TCPConn.ReadFrom(r)
	if isFile {
		c.fromFile.Add(n)
	}
	return n, err
}

type fileListener struct {
	net.Listener
	fromFile *atomic.Int64
}

func (l fileListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return fileConn{TCPConn: c.(*net.TCPConn), fromFile: l.fromFile}, nil
}

// Blob GETs reach the connection as the blob's file through every
// middleware (request id, access log, metrics, limits, idle cut-off), so
// that net/http sends them with sendfile, full or ranged; the access log
// and the metrics still count every byte, and HEAD sends none.
func TestBlobGet_SendsTheFileThroughEveryMiddleware(t *testing.T) {
	sink := newLogSink()
	srv, _ := newServer(t, "", slog.New(sink), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var fromFile atomic.Int64
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, fileListener{Listener: ln, fromFile: &fromFile}) }()
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

	// net/http copies the first 512 bytes itself (for content sniffing)
	// before it hands the rest to the connection.
	const sniffLen = 512
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
			before := fromFile.Load()
			h := http.Header{}
			if tc.rng != "" {
				h.Set("Range", tc.rng)
			}
			resp, b := do(http.MethodGet, blob, h, nil)
			if resp.StatusCode != tc.status || !bytes.Equal(b, content[tc.from:tc.to]) {
				t.Fatalf("GET %s: %s, %d bytes (equal: %v); want %d and bytes %d-%d", tc.rng, resp.Status, len(b),
					bytes.Equal(b, content[tc.from:tc.to]), tc.status, tc.from, tc.to)
			}
			if got, want := fromFile.Load()-before, int64(tc.to-tc.from-sniffLen); got < want {
				t.Errorf("%d bytes reached the connection as the file, want at least %d: a wrapper hides the file (or ReadFrom) from net/http", got, want)
			}
			line := awaitRequest(t, sink, http.MethodGet)
			if line["bytes_out"] != strconv.Itoa(tc.to-tc.from) || line["status"] != strconv.Itoa(tc.status) {
				t.Errorf("access log: status %s bytes_out %s, want %d and %d", line["status"], line["bytes_out"], tc.status, tc.to-tc.from)
			}
		})
	}

	before := fromFile.Load()
	resp, b := do(http.MethodHead, blob, nil, nil)
	if resp.StatusCode != http.StatusOK || len(b) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(size) {
		t.Errorf("HEAD: %s, %d body bytes, Content-Length %s; want 200, none, %d", resp.Status, len(b), resp.Header.Get("Content-Length"), size)
	}
	if n := fromFile.Load() - before; n != 0 {
		t.Errorf("HEAD sent %d bytes of the file", n)
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
