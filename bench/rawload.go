package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runRawLoad is the request-rate generator: conns goroutines, each owning
// one keep-alive HTTP/1.1 connection, write a pre-built request and parse
// only the status line and the body's framing of each answer. It exists
// because on a small machine the generator shares the CPU with the server:
// net/http's client spends about three times the CPU per request (header
// maps, a goroutine per connection for reading, context plumbing), which
// the server under test then lacks. wrk does the same job in C but cannot
// do HEAD; this does both. The net/http client and wrk remain as
// cross-checks (see the report).
func runRawLoad(ctx context.Context, addr, method, path string, header map[string]string, pid, conns int,
	warmup, dur time.Duration) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, addr)
	if _, ok := header["User-Agent"]; !ok {
		b.WriteString("User-Agent: wharf-bench\r\n")
	}
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	req := b.Bytes()

	start := time.Now()
	winStart, winEnd := start.Add(warmup), start.Add(warmup+dur)
	lats := make([][]time.Duration, conns)
	var errCount atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			defer func() { lats[w] = lat }()
			var conn net.Conn
			var br *bufio.Reader
			for ctx.Err() == nil {
				if conn == nil {
					c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
					if err != nil {
						errCount.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					conn, br = c, bufio.NewReaderSize(c, 64<<10)
				}
				t0 := time.Now()
				if t0.After(winEnd) {
					break
				}
				status, keep, err := roundTrip(conn, br, req, method == "HEAD")
				t1 := time.Now()
				if err == nil && status != 200 {
					err = fmt.Errorf("%s %s: status %d", method, path, status)
				}
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err)
					keep = false
				} else if !t1.Before(winStart) && !t1.After(winEnd) {
					lat = append(lat, t1.Sub(t0))
				}
				if !keep {
					conn.Close()
					conn = nil
				}
			}
			if conn != nil {
				conn.Close()
			}
		}()
	}
	cpu := make(chan [2]float64, 1)
	go func() {
		time.Sleep(time.Until(winStart))
		m := startCPU(pid)
		time.Sleep(time.Until(winEnd))
		gen, srv := m.stop()
		cpu <- [2]float64{gen, srv}
	}()
	wg.Wait()
	c := <-cpu
	res := loadResult{Window: dur, GenCPU: c[0], SrvCPU: c[1], Errors: int(errCount.Load())}
	for _, l := range lats {
		res.Latency = append(res.Latency, l...)
	}
	res.Requests = len(res.Latency)
	slices.Sort(res.Latency)
	if err, _ := firstErr.Load().(error); err != nil && (res.Requests == 0 || res.Errors > res.Requests/100) {
		return res, fmt.Errorf("%d errors, %d ok; first: %w", res.Errors, res.Requests, err)
	}
	return res, nil
}

// roundTrip writes req and reads one answer: status line, headers, and a
// body framed by Content-Length or chunked encoding (none for HEAD).
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte, head bool) (status int, keep bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keep := int64(-1), false, true
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		if len(line) <= 2 { // the blank line after the headers
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return status, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			keep = !bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case head || status == 204 || status == 304:
	case chunked:
		err = discardChunked(br)
	case length >= 0:
		_, err = br.Discard(int(length))
	default:
		return status, false, errors.New("answer without Content-Length on a keep-alive connection")
	}
	return status, keep && err == nil, err
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		hexLen, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(hexLen), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, then the blank line
				line, err = br.ReadSlice('\n')
				if err != nil || len(line) <= 2 {
					return err
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
