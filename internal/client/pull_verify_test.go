package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wharf/wharf/internal/client/store"
	"github.com/wharf/wharf/internal/registrytest"
)

// corruptBlob flips one byte of the body of GET /v2/…/blobs/<digest>,
// keeping its length: only a digest check can tell.
type corruptBlob struct {
	digest string
	next   http.RoundTripper
}

func (c corruptBlob) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/blobs/"+c.digest) {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b[len(b)/2] ^= 0xff
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// TestPull_CorruptBlobIsNotStored: the store does not hash pulled layers
// itself (go-containerregistry's reader verifies them); a layer whose bytes
// do not match its digest must still fail the pull and leave nothing in
// the store: not that layer, not the good ones, no image, no temp files.
func TestPull_CorruptBlobIsNotStored(t *testing.T) {
	ctx := context.Background()
	r := testRemote(t)
	host, img := pushedImage(t, "team/corrupt:v1", "corrupt", 3)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bad, err := layers[1].Digest()
	if err != nil {
		t.Fatal(err)
	}

	st := newStore(t)
	pr := r
	pr.Transport = corruptBlob{digest: bad.String(), next: http.DefaultTransport}
	err = Pull(ctx, st, host+"/team/corrupt:v1", PullOptions{Remote: pr}, io.Discard)
	if err == nil {
		t.Fatal("pull of a corrupt layer succeeded")
	}
	for _, l := range layers {
		d, _ := l.Digest()
		if st.HasBlob(d) {
			t.Errorf("layer %s is in the store after a failed pull", d)
		}
	}
	noImageLeft(t, st, host+"/team/corrupt:v1")

	// The same pull without the corruption stores the image.
	if err := Pull(ctx, st, host+"/team/corrupt:v1", PullOptions{Remote: r}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !st.HasBlob(bad) {
		t.Error("layer missing after a good pull")
	}
}

// cancelMidBlob cancels the pull once the first bytes of a layer have been
// read, as an interrupted `wharf image pull` (Ctrl-C) is.
type cancelMidBlob struct {
	layer  string
	cancel context.CancelFunc
	next   http.RoundTripper
}

func (c cancelMidBlob) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/blobs/"+c.layer) {
		return resp, err
	}
	resp.Body = &cancelAfterRead{ReadCloser: resp.Body, cancel: c.cancel}
	return resp, nil
}

// cancelAfterRead hands out the first 16 bytes, then cancels and fails
// every later read, as a body does whose connection an interrupt closed
// (a small body may otherwise be buffered whole before the cancel).
type cancelAfterRead struct {
	io.ReadCloser
	cancel context.CancelFunc
	read   bool
}

func (c *cancelAfterRead) Read(p []byte) (int, error) {
	if c.read {
		return 0, context.Canceled
	}
	c.read = true
	n, err := c.ReadCloser.Read(p[:min(len(p), 16)])
	c.cancel()
	return n, err
}

// TestPull_InterruptedLeavesNothing: a pull stopped while a layer's bytes
// flow fails and leaves no blob under its digest, no temporary file and no
// image: the layers are written concurrently, and the ones that finished
// are not kept either, since nothing would refer to them.
func TestPull_InterruptedLeavesNothing(t *testing.T) {
	host, img := pushedImage(t, "team/interrupted:v1", "interrupted", 4)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	mid, err := layers[2].Digest()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := testRemote(t)
	r.Transport = cancelMidBlob{layer: mid.String(), cancel: cancel, next: http.DefaultTransport}
	st := newStore(t)
	if err := Pull(ctx, st, host+"/team/interrupted:v1", PullOptions{Remote: r}, io.Discard); err == nil {
		t.Fatal("interrupted pull succeeded")
	}
	noImageLeft(t, st, host+"/team/interrupted:v1")
}

// pushedImage pushes a test image of n layers to a new in-process
// registry as repoTag and returns the registry's host and the image.
func pushedImage(t *testing.T, repoTag, seed string, n int) (string, v1.Image) {
	t.Helper()
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	img := testImage(t, seed, n)
	src := newStore(t)
	localImage(t, src, img, host+"/"+repoTag)
	if err := Push(context.Background(), src, host+"/"+repoTag, PushOptions{Remote: testRemote(t)}, io.Discard); err != nil {
		t.Fatal(err)
	}
	return host, img
}

// noImageLeft fails unless st holds no image for ref and no file at all
// under blobs/sha256: no blob, no temporary file.
func noImageLeft(t *testing.T, st *store.Store, ref string) {
	t.Helper()
	if _, _, err := st.Image(context.Background(), ref); err == nil {
		t.Errorf("%s is in the store after a failed pull", ref)
	}
	ents, err := os.ReadDir(filepath.Join(st.Root(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in the store: %s", e.Name())
	}
}
