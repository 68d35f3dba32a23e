package client

import (
	"bytes"
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/wharf/wharf/internal/registrytest"
)

// TestPush_NamesLayersByTheConfigsDiffIDs: push names each layer, as
// docker does, by the diff ID its image's config lists, and does not
// decompress and hash the layer to find it (which read every layer once
// more and was most of a push's CPU). The config here lists diff IDs no
// layer hashes to, so the output tells which way the name was found.
func TestPush_NamesLayersByTheConfigsDiffIDs(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	st := newStore(t)
	img := testImage(t, "diffid", 2)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	var claimed []v1.Hash
	for i := range cf.RootFS.DiffIDs {
		h, _, err := v1.SHA256(strings.NewReader("claimed diff id " + string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		cf.RootFS.DiffIDs[i] = h
		claimed = append(claimed, h)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	localImage(t, st, img, host+"/diff/ids:1")
	var out bytes.Buffer
	if err := Push(ctx, st, host+"/diff/ids:1", PushOptions{Remote: testRemote(t)}, &out); err != nil {
		t.Fatal(err)
	}
	for _, h := range claimed {
		if !strings.Contains(out.String(), shortHash(h)+": Pushed") {
			t.Errorf("push output does not name a layer %s (its config's diff ID):\n%s", shortHash(h), out.String())
		}
	}
}
