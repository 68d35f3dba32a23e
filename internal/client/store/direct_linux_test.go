package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// probeLayer records, when the store first reads it, whether the temporary
// file its bytes go to is open for direct I/O. verified stands for where
// it comes from: a registry (a pull) or a file (a load).
type probeLayer struct {
	v1.Layer
	t        *testing.T
	tmp      string // prefix of the temporary file's path
	verified bool

	once   sync.Once
	direct bool
	found  bool
}

func (p *probeLayer) DigestVerified() bool { return p.verified }

func (p *probeLayer) Compressed() (io.ReadCloser, error) {
	rc, err := p.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return probeReader{ReadCloser: rc, p: p}, nil
}

type probeReader struct {
	io.ReadCloser
	p *probeLayer
}

func (r probeReader) Read(b []byte) (int, error) {
	r.p.once.Do(func() { r.p.direct, r.p.found = openFlags(r.p.t, r.p.tmp) })
	return r.ReadCloser.Read(b)
}

// openFlags reports whether this process has a file open whose path starts
// with prefix, and whether that file is open with O_DIRECT.
func openFlags(t *testing.T, prefix string) (direct, found bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Error(err)
		return false, false
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasPrefix(target, prefix) {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			t.Error(err)
			return false, false
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				fl, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
				if err != nil {
					t.Error(err)
				}
				return fl&unix.O_DIRECT != 0, true
			}
		}
	}
	return false, false
}

// TestWritePulled_WritesLayersWithDirectIO: a pull writes its layers with
// direct I/O, a load through the page cache; either way each stored blob
// has exactly its bytes, whether its size is a whole number of direct
// writes, more with a ragged end, or less than one block.
func TestWritePulled_WritesLayersWithDirectIO(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(root, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if err := setDirect(f, true); err != nil {
		f.Close()
		// tmpfs has none, and the store falls back to the page cache
		// there by design; make test must check the direct path, so it
		// needs a TMPDIR on a disk file system (the machines it runs on
		// have /tmp on ext4).
		if os.Getenv("WHARF_TEST_SERVICES") == "require" {
			t.Fatalf("the file system of %s has no direct I/O (%v): set TMPDIR to a directory on a disk file system", root, err)
		}
		t.Skipf("the file system of %s has no direct I/O: %v", root, err)
	}
	f.Close()

	sizes := []int64{2 * directBufSize, directBufSize + 3*directAlign + 17, directAlign - 1}
	for _, pulled := range []bool{true, false} {
		s := openStore(t, filepath.Join(root, strconv.FormatBool(pulled)))
		var probes []*probeLayer
		img := v1.Image(empty.Image)
		for _, size := range sizes {
			b := make([]byte, size)
			_, _ = rand.NewChaCha8([32]byte{byte(len(probes))}).Read(b)
			l := static.NewLayer(b, types.OCILayer)
			d, _ := l.Digest()
			p := &probeLayer{Layer: l, t: t, verified: pulled,
				tmp: filepath.Join(s.Root(), "blobs", "sha256", ".tmp-"+d.Hex+"-")}
			probes = append(probes, p)
			if img, err = mutate.AppendLayers(img, p); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		if pulled {
			err = s.WritePulled(ctx, img, Pulled{Repo: named(t, "example.com/probe")})
		} else {
			err = s.WriteImage(ctx, img)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range probes {
			d, _ := p.Digest()
			if !p.found {
				t.Errorf("pulled=%v, %d bytes: no temporary file open while the layer was read", pulled, sizes[i])
			} else if p.direct != pulled {
				t.Errorf("pulled=%v, %d bytes: written with O_DIRECT=%v", pulled, sizes[i], p.direct)
			}
			b, err := os.ReadFile(s.blobPath(d))
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Hex || int64(len(b)) != sizes[i] {
				t.Errorf("pulled=%v: blob %s holds %d other bytes", pulled, d, len(b))
			}
		}
	}
}
