package registry_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/registry"
)

// chunkReader hands out 1 MiB per Read from data and reports each Read's
// running total on reads.
type chunkReader struct {
	data  []byte
	off   int
	reads chan int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1<<20)], r.data[r.off:])
	r.off += n
	if r.reads != nil {
		r.reads <- r.off
	}
	return n, nil
}

// gatedWriter holds its first write until gate is closed, and records what
// it was given and whether anything was written after done was set.
type gatedWriter struct {
	gate     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	got      bytes.Buffer
	failAt   int // fail the write that would pass this many bytes; 0: never
	done     atomic.Bool
	lateCall atomic.Bool
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if w.done.Load() {
		w.lateCall.Store(true)
	}
	w.once.Do(func() { <-w.gate })
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAt > 0 && w.got.Len()+len(p) > w.failAt {
		return 0, errors.New("injected disk error")
	}
	return w.got.Write(p)
}

func patternOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 / 5)
	}
	return b
}

// A write that stalls (a disk busy with someone else's flush) must not
// stop the reading at once: the body keeps arriving into the buffers
// ahead of the write, so the client is not held up by every hiccup.
func TestHashCopy_ReadsAheadOfAStalledWrite(t *testing.T) {
	data := patternOf(8 << 20)
	src := &chunkReader{data: data, reads: make(chan int, 64)}
	dst := &gatedWriter{gate: make(chan struct{})}
	h := sha256.New()
	type result struct {
		n          int64
		rerr, werr error
	}
	res := make(chan result, 1)
	go func() {
		n, rerr, werr := registry.HashCopy(dst, h, src)
		res <- result{n, rerr, werr}
	}()
	// With the first write held, the reader must still get 3 MiB ahead.
	const ahead = 3 << 20
	deadline := time.After(10 * time.Second)
	for read := 0; read < ahead; {
		select {
		case read = <-src.reads:
		case <-deadline:
			close(dst.gate)
			t.Fatalf("reading stopped at %d bytes while the first write stalled; want at least %d read ahead", read, ahead)
		}
	}
	close(dst.gate)
	go func() {
		for range src.reads {
		}
	}()
	r := <-res
	close(src.reads)
	if r.rerr != nil || r.werr != nil || r.n != int64(len(data)) {
		t.Fatalf("HashCopy = %d, %v, %v; want %d, nil, nil", r.n, r.rerr, r.werr, len(data))
	}
	if !bytes.Equal(dst.got.Bytes(), data) {
		t.Error("bytes written differ from the bytes read")
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("hash differs from the bytes' sha256")
	}
}

// A failed write ends the copy: it is returned as the write error, the
// reading stops instead of draining the whole body, and nothing is written
// once HashCopy has returned (the caller closes or aborts the upload then).
func TestHashCopy_WriteErrorStopsTheCopy(t *testing.T) {
	data := patternOf(16 << 20)
	src := &chunkReader{data: data}
	gate := make(chan struct{})
	close(gate)
	dst := &gatedWriter{gate: gate, failAt: 2 << 20}
	n, rerr, werr := registry.HashCopy(dst, sha256.New(), src)
	dst.done.Store(true)
	if werr == nil || rerr != nil {
		t.Fatalf("HashCopy errors = %v, %v; want a write error only", rerr, werr)
	}
	if n >= int64(len(data)) {
		t.Errorf("read all %d bytes after the write failed; want the reading to stop", n)
	}
	if dst.lateCall.Load() {
		t.Error("a write ran after HashCopy returned")
	}
}

// A body cut off mid-stream is a read error, never a clean end.
func TestHashCopy_TruncatedBodyIsAReadError(t *testing.T) {
	data := patternOf(3<<20 + 5)
	src := io.MultiReader(bytes.NewReader(data), iotestErrReader{io.ErrUnexpectedEOF})
	var dst bytes.Buffer
	n, rerr, werr := registry.HashCopy(&dst, sha256.New(), src)
	if !errors.Is(rerr, io.ErrUnexpectedEOF) || werr != nil {
		t.Fatalf("HashCopy errors = %v, %v; want io.ErrUnexpectedEOF, nil", rerr, werr)
	}
	if n != int64(len(data)) || !bytes.Equal(dst.Bytes(), data) {
		t.Errorf("copied %d bytes (%d written); want all %d that arrived", n, dst.Len(), len(data))
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// BenchmarkHashCopy streams 64 MiB through HashCopy into a sink that only
// counts (the cost of the reading, hashing and hand-over) and into a file
// (with the page cache's copy, as an upload writes).
func BenchmarkHashCopy(b *testing.B) {
	data := patternOf(64 << 20)
	for _, tc := range []struct {
		name string
		dst  func(b *testing.B) io.Writer
	}{
		{"Discard", func(*testing.B) io.Writer { return io.Discard }},
		{"File", func(b *testing.B) io.Writer {
			f, err := os.CreateTemp(b.TempDir(), "hashcopy")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { f.Close() })
			return f
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dst := tc.dst(b)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if f, ok := dst.(*os.File); ok {
					b.StopTimer()
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, rerr, werr := registry.HashCopy(dst, sha256.New(), &chunkReader{data: data}); rerr != nil || werr != nil {
					b.Fatal(rerr, werr)
				}
			}
		})
	}
}
