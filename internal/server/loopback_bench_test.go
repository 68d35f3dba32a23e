package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkManifestByTagLoopback measures a manifest GET or HEAD by tag
// over loopback TCP as the bench's manifest rows do: 64 keep-alive
// connections, each sending a pre-built request and reading only the
// answer's framing, against wharf's handler (access log and metrics on)
// and against the bare handler, each in an http.Server with the timeouts
// that wharf serve and the null registry set. ns/op is wall time per
// request with all 64 going at once, so wharf's over bare's is the share
// of the bare rate that wharf reaches on this machine, server and load
// generator in one process (cpu-ns/op, the process's CPU time per
// request, is steadier when other processes share the cores); a CPU profile of it shows what wharf adds
// around the handler too (connection, headers, garbage), which
// BenchmarkManifestByTagHandler leaves out.
func BenchmarkManifestByTagLoopback(b *testing.B) {
	h, bare, md, _ := manifestHandlers(b, io.Discard)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, c := range []struct {
			name string
			srv  func() *http.Server
		}{
			{"wharf", func() *http.Server {
				return &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
			}},
			{"bare", func() *http.Server { return &http.Server{Handler: bare, ReadHeaderTimeout: 10 * time.Second} }},
		} {
			b.Run(c.name+"-"+method, func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				srv := c.srv()
				go func() { _ = srv.Serve(ln) }()
				defer srv.Close()
				req := fmt.Appendf(nil, "%s /v2/bench/app/manifests/latest HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\n"+
					"User-Agent: docker/27.3.1 go/go1.22.7 git-commit/41ca978 os/linux arch/amd64\r\n\r\n",
					method, ln.Addr(), v1.MediaTypeImageManifest)
				loadLoopback(b, ln.Addr().String(), req, method == http.MethodHead, md)
			})
		}
	}
}

// loadLoopback sends req b.N times over 64 connections and checks that
// each answer is a 200 with digest md.
func loadLoopback(b *testing.B, addr string, req []byte, head bool, md string) {
	const conns = 64
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for range conns {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			br := bufio.NewReaderSize(conn, 16<<10)
			want := []byte("Docker-Content-Digest: " + md)
			var hdr []byte
			for left.Add(-1) >= 0 {
				if _, err := conn.Write(req); err != nil {
					errs <- err
					return
				}
				hdr = hdr[:0]
				length := 0
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						errs <- err
						return
					}
					if len(line) <= 2 {
						break
					}
					hdr = append(hdr, line...)
					if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
						length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
					}
				}
				if !bytes.HasPrefix(hdr, []byte("HTTP/1.1 200")) || !bytes.Contains(hdr, want) {
					errs <- fmt.Errorf("answer %q", hdr)
					return
				}
				if !head {
					if _, err := br.Discard(length); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	// The process's CPU time (server and load generator together) per
	// request: on a shared machine wall time follows the other processes,
	// CPU time much less, and the load generator's share is the same for
	// wharf and bare.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	close(errs)
	if err := <-errs; err != nil && err != io.EOF {
		b.Fatal(err)
	}
}
