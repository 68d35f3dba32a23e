package store

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// lyingLayer serves other bytes than its digest says and, implementing
// VerifiedLayer, says it does not check them.
type lyingLayer struct{ v1.Layer }

func (l lyingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	b[0] ^= 0xff
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (lyingLayer) DigestVerified() bool { return false }

// TestWriteImage_HashesUnverifiedLayers: a layer that does not verify itself
// (a load from a file) is hashed while it is written, across several copy
// buffers, and rejected on a mismatch; none of the image's blobs become
// visible, the good ones included.
func TestWriteImage_HashesUnverifiedLayers(t *testing.T) {
	s := openStore(t, t.TempDir())
	good, err := random.Layer(3*copyBufSize+17, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := random.Layer(copyBufSize+5, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(newImage(t), good, lyingLayer{Layer: bad})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteImage(context.Background(), img); err == nil {
		t.Fatal("WriteImage stored a layer whose bytes do not match its digest")
	}
	ents, err := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in the store: %s", e.Name())
	}

	img, err = mutate.AppendLayers(newImage(t), good, bad)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, img)
	for _, l := range []v1.Layer{good, bad} {
		d, _ := l.Digest()
		if !s.HasBlob(d) {
			t.Errorf("layer %s missing", d)
		}
	}
}
