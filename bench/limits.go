package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The machine's physical limits that are not HTTP: the HTTP ones (loopback
// PUT and GET, a bare handler's request rate) come from the null registry,
// measured inside the scenarios, alternating with the two registries.

// sha256Limit hashes size bytes on one goroutine (one core) and returns MB/s.
func sha256Limit(size int64) float64 {
	h := sha256.New()
	r := blob{Size: size}.reader()
	t0 := time.Now()
	_, _ = r.WriteTo(h)
	h.Sum(nil)
	return mbps(size, time.Since(t0))
}

// fsyncLimit writes size bytes to a new file in dir in 1 MiB writes, fsyncs
// it, and returns MB/s over the whole (write + fsync), which is what a
// registry must do before it may acknowledge a blob.
func fsyncLimit(dir string, size int64) (float64, error) {
	syscall.Sync()
	path := filepath.Join(dir, "fsync-limit.tmp")
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	r := blob{Size: size}.reader()
	t0 := time.Now()
	if _, err := r.WriteTo(f); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return mbps(size, time.Since(t0)), nil
}
