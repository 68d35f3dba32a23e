package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"sync"
)

// patternSize is the period of the pseudo-random bytes that blob bodies are
// cut from. Blobs are served from this one buffer so that the harness spends
// no CPU generating bytes while it measures; 64 MiB is more than any cache a
// registry keeps and costs ~50 ms to build.
const patternSize = 64 << 20

var pattern = sync.OnceValue(func() []byte {
	b := make([]byte, patternSize)
	r := rand.NewChaCha8([32]byte{'w', 'h', 'a', 'r', 'f', '-', 'b', 'e', 'n', 'c', 'h'})
	_, _ = r.Read(b)
	return b
})

// blob is a deterministic pseudo-random blob: the pattern repeated to Size,
// with its first eight bytes replaced by Seed so that every seed has its own
// digest (a registry must never see a push of bytes it already holds).
type blob struct {
	Size int64
	Seed uint64
}

// section reads bytes [off, off+n) of the blob.
func (b blob) section(off, n int64) *blobReader {
	return &blobReader{b: b, off: off, end: min(off+n, b.Size)}
}

func (b blob) reader() *blobReader { return b.section(0, b.Size) }

// blobReader streams a blob without copying: WriteTo hands out slices of the
// pattern, which is what net/http and the hasher ask for.
type blobReader struct {
	b        blob
	off, end int64
	seed     [8]byte
}

func (r *blobReader) chunk(limit int64) []byte {
	if r.off < 8 {
		binary.BigEndian.PutUint64(r.seed[:], r.b.Seed)
		return r.seed[r.off:min(8, r.off+limit, r.end)]
	}
	i := r.off % patternSize
	n := min(limit, patternSize-i, r.end-r.off)
	return pattern()[i : i+n]
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.off < r.end {
		c := copy(p[n:], r.chunk(int64(len(p)-n)))
		n += c
		r.off += int64(c)
	}
	return n, nil
}

func (r *blobReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.off < r.end {
		n, err := w.Write(r.chunk(1 << 20))
		total += int64(n)
		r.off += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// digestCache remembers blob digests: hashing 1 GiB takes about a second,
// done outside every timed section.
type digestCache struct {
	mu sync.Mutex
	m  map[blob]string
}

func (c *digestCache) of(b blob) string {
	c.mu.Lock()
	d, ok := c.m[b]
	c.mu.Unlock()
	if ok {
		return d
	}
	h := sha256.New()
	_, _ = b.reader().WriteTo(h)
	d = "sha256:" + hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	if c.m == nil {
		c.m = map[blob]string{}
	}
	c.m[b] = d
	c.mu.Unlock()
	return d
}

// randomBytes returns n pseudo-random bytes determined by seed (small
// layers and the like, where a fresh buffer costs nothing).
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
