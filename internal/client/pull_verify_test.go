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
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	img := testImage(t, "corrupt", 3)
	src := newStore(t)
	localImage(t, src, img, host+"/team/corrupt:v1")
	if err := Push(ctx, src, host+"/team/corrupt:v1", PushOptions{Remote: r}, io.Discard); err != nil {
		t.Fatal(err)
	}
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
	if _, _, err := st.Image(ctx, host+"/team/corrupt:v1"); err == nil {
		t.Error("the image is in the store after a failed pull")
	}
	ents, err := os.ReadDir(filepath.Join(st.Root(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in the store: %s", e.Name())
	}

	// The same pull without the corruption stores the image.
	if err := Pull(ctx, st, host+"/team/corrupt:v1", PullOptions{Remote: r}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !st.HasBlob(bad) {
		t.Error("layer missing after a good pull")
	}
}
