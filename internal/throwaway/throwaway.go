// Package throwaway starts the real external servers that wharf's shared-
// storage drivers run against (PostgreSQL 15, the versitygw S3 gateway) as
// throwaway processes on loopback. The tests reach it through servicetest,
// which skips or fails a test for a missing server; the benchmarks call it
// directly and fail their shared-storage section.
package throwaway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrNotInstalled wraps the error of a server that is not installed here;
// its message says how to install it.
var ErrNotInstalled = errors.New("not installed")

// DefaultBinDir is where test/e2e/setup.sh installs the servers it builds.
const DefaultBinDir = "/var/cache/wharf-test/bin"

// FreeLoopbackAddr picks a free loopback port. The window between closing
// it here and the server binding it is harmless on a quiet loopback.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tail keeps the last bytes a server wrote, for the error that reports its
// failure: a long-running server's whole log would grow without bound.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// errExited is WaitListening's answer for a process that ended first.
var errExited = errors.New("exited before listening")

// WaitListening polls addr until it accepts a connection. It gives up when
// exited is closed (the starting process ended) or after 30 s.
func WaitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("not listening after 30s")
		case <-time.After(20 * time.Millisecond): // polling a starting process
		}
	}
}
