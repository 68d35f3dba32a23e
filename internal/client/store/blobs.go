package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// VerifiedLayer is a layer whose Compressed stream checks itself: it fails
// a Read at EOF (before reporting io.EOF) unless exactly the descriptor's
// size and digest went through it, as go-containerregistry's remote layers
// do. The store then does not hash the bytes a second time; it still never
// renames a blob into place unless the stream ended without error.
type VerifiedLayer interface {
	v1.Layer
	// DigestVerified reports whether Compressed verifies size and digest.
	DigestVerified() bool
}

// copyBufSize is the size of the reads and writes of a blob copy: 32 KiB
// (io.Copy's) costs a syscall pair and a hash call per 32 KiB.
const copyBufSize = 1 << 20

// writebackChunk is how much of a blob is written before the kernel is
// asked to start writing it out, so that the fsync before the blob is
// committed has little left to wait for.
const writebackChunk = 8 << 20

// directBufSize is the size of a direct write (see batch.direct): each
// waits for the disk, so it is large enough for the disk to stream and few
// enough per blob that the waits stay a small part of a pull.
const directBufSize = 4 << 20

var (
	copyBufs   = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}
	directBufs = sync.Pool{New: func() any { b := alignedBuf(directBufSize); return &b }}
)

// batch holds blobs written to temporary files and not yet in place. They
// are made durable together (commit: fsync each in parallel, rename, fsync
// the directory once) before the caller records anything that refers to
// them, so a crash leaves at most unreferenced temporary files.
type batch struct {
	s *Store
	// direct writes the blobs with direct I/O (O_DIRECT, where the file
	// system has it), from the buffer to the disk without a copy into the
	// page cache. A pull wants that: it must have every byte on disk before
	// it returns, and the copy into the page cache (and its write-out) was
	// most of a pull's CPU. A load keeps the page cache: what it stores is
	// usually pushed next, and read back from memory then.
	direct  bool
	mu      sync.Mutex
	pending map[v1.Hash]*os.File
}

// commitBlobs runs write, which stages blobs into a batch, then commits
// them; on any error nothing it staged is left behind. direct sets
// batch.direct.
func (s *Store) commitBlobs(direct bool, write func(*batch) error) error {
	b := &batch{s: s, direct: direct, pending: map[v1.Hash]*os.File{}}
	err := write(b)
	if err == nil {
		err = b.commit()
	}
	b.abort()
	return err
}

// has reports whether h is stored or staged in this batch.
func (b *batch) has(h v1.Hash) bool {
	b.mu.Lock()
	_, ok := b.pending[h]
	b.mu.Unlock()
	return ok || b.s.HasBlob(h)
}

// stage streams r into a temporary file beside the blob h (layout.Path's
// WriteBlob writes in place, which a concurrent reader could see half
// done). Unless r verifies itself (verified), it hashes the bytes as it
// writes them and fails unless they have digest h.
func (b *batch) stage(h v1.Hash, r io.Reader, verified bool) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", h.Algorithm)
	}
	dir := filepath.Join(b.s.root, "blobs", h.Algorithm)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+h.Hex+"-*")
	if err != nil {
		return err
	}
	var hasher hash.Hash
	if !verified {
		hasher = sha256.New()
	}
	if _, err := copyBlob(f, r, hasher, b.direct); err != nil {
		discard(f)
		return fmt.Errorf("write blob %s: %w", h, err)
	}
	if hasher != nil {
		if got := hex.EncodeToString(hasher.Sum(nil)); got != h.Hex {
			discard(f)
			return fmt.Errorf("blob %s: content has digest sha256:%s", h, got)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.pending[h]; dup {
		discard(f) // two images of an index share it; one copy is enough
		return nil
	}
	b.pending[h] = f
	return nil
}

// copyBlob copies r to f, feeding h (if any). Through the page cache it
// writes copyBufSize pieces and starts the write-out of each
// writebackChunk as soon as it is written; with direct (see batch.direct)
// it writes directBufSize pieces straight to the disk.
func copyBlob(f *os.File, r io.Reader, h hash.Hash, direct bool) (int64, error) {
	if direct && setDirect(f, true) != nil {
		direct = false
	}
	pool := &copyBufs
	if direct {
		pool = &directBufs
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	buf := *bp
	var n, started int64
	for {
		// Fill the buffer, keeping the error that ends the stream: a
		// verifying reader reports a mismatch with its last bytes.
		m := 0
		var rerr error
		for m < len(buf) && rerr == nil {
			var k int
			k, rerr = r.Read(buf[m:])
			m += k
		}
		if m > 0 {
			if err := writeChunk(f, buf[:m], &direct); err != nil {
				return n, err
			}
			if h != nil {
				h.Write(buf[:m])
			}
			n += int64(m)
			if !direct && n-started >= writebackChunk {
				startWriteback(f, started, n-started)
				started = n
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// writeChunk writes p at f's offset. With direct I/O it writes the part of
// p that is a whole number of blocks directly; the rest (the end of a blob:
// copyBlob fills its buffer whole until then), or all of it if the file
// system refuses the direct write, goes through the page cache, and
// direct is turned off for f.
func writeChunk(f *os.File, p []byte, direct *bool) error {
	if *direct {
		k, err := f.Write(p[:len(p)&^(directAlign-1)])
		p = p[k:]
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			return err
		}
		if len(p) == 0 {
			return nil
		}
		if err := setDirect(f, false); err != nil {
			return err
		}
		*direct = false
	}
	_, err := f.Write(p)
	return err
}

// commit makes every staged blob durable and then visible.
func (b *batch) commit() error {
	if len(b.pending) == 0 {
		return nil
	}
	var g errgroup.Group
	g.SetLimit(4)
	for _, f := range b.pending {
		g.Go(f.Sync)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for h, f := range b.pending {
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(f.Name(), b.s.blobPath(h)); err != nil {
			return err
		}
		delete(b.pending, h)
	}
	// The renames must be on disk before index.json names the image.
	return syncDir(filepath.Join(b.s.root, "blobs", "sha256"))
}

// abort removes whatever is still staged.
func (b *batch) abort() {
	for h, f := range b.pending {
		discard(f)
		delete(b.pending, h)
	}
}

func discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *Store) writeImageBlobs(ctx context.Context, b *batch, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(5)
	for _, l := range layers {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			mt, err := l.MediaType()
			if err == nil && !mt.IsDistributable() {
				return nil // foreign layers are fetched from their URLs, as docker does
			}
			h, err := l.Digest()
			if err != nil {
				return err
			}
			if b.has(h) {
				return nil
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			vl, ok := l.(VerifiedLayer)
			return b.stage(h, rc, ok && vl.DigestVerified())
		})
	}
	// The config beside the layers: from a registry it is one more
	// round trip, which need not wait for the last layer.
	g.Go(func() error {
		cfgName, err := img.ConfigName()
		if err != nil {
			return err
		}
		if b.has(cfgName) {
			return nil
		}
		raw, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		return b.stage(cfgName, bytes.NewReader(raw), false)
	})
	if err := g.Wait(); err != nil {
		return err
	}
	return s.writeManifestBlob(b, img)
}

type rawManifester interface {
	Digest() (v1.Hash, error)
	RawManifest() ([]byte, error)
}

func (s *Store) writeManifestBlob(b *batch, m rawManifester) error {
	h, err := m.Digest()
	if err != nil {
		return err
	}
	if b.has(h) {
		return nil
	}
	raw, err := m.RawManifest()
	if err != nil {
		return err
	}
	return b.stage(h, bytes.NewReader(raw), false)
}

func (s *Store) writeIndexBlobs(ctx context.Context, b *batch, ii v1.ImageIndex) error {
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := s.writeIndexBlobs(ctx, b, child); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			child, err := ii.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := s.writeImageBlobs(ctx, b, child); err != nil {
				return err
			}
		default:
			// Artifacts and attestations other than images are not kept.
		}
	}
	return s.writeManifestBlob(b, ii)
}
