package client

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf/wharf/internal/client/store"
)

// partialIndexTar is what `docker save` writes with docker 25+'s
// containerd image store for an image pulled for one platform: index.json
// points at the registry's whole index (tagged by annotation), but blobs/
// holds only the platforms in keep.
func partialIndexTar(t *testing.T, keep ...v1.Platform) (tarball []byte, images map[string]v1.Image) {
	t.Helper()
	host := store.HostPlatform()
	other := v1.Platform{OS: "linux", Architecture: "arm64"}
	if host.Architecture == "arm64" {
		other.Architecture = "amd64"
	}
	unknown := v1.Platform{OS: "unknown", Architecture: "unknown"}
	images = map[string]v1.Image{
		host.String():  platformImage(t, host, static.NewLayer([]byte("host rootfs"), types.OCILayer)),
		other.String(): platformImage(t, other, static.NewLayer([]byte("other rootfs"), types.OCILayer)),
	}
	attest := platformImage(t, unknown, static.NewLayer([]byte(`{"_type":"in-toto"}`), types.OCILayer))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: images[host.String()], Descriptor: v1.Descriptor{Platform: &host}},
		mutate.IndexAddendum{Add: images[other.String()], Descriptor: v1.Descriptor{Platform: &other}},
		mutate.IndexAddendum{Add: attest, Descriptor: v1.Descriptor{Platform: &unknown}})
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		annotationContainerdName: "docker.io/library/app:1", annotationRefName: "1"})); err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, p := range keep {
		kept[p.String()] = true
	}
	// Drop the manifest, config and layers of every platform not kept, and
	// the attestation, as a single-platform pull never fetched them.
	drop := []v1.Image{attest}
	for p, img := range images {
		if !kept[p] {
			drop = append(drop, img)
		}
	}
	for _, img := range drop {
		d, _ := img.Digest()
		c, _ := img.ConfigName()
		hs := []v1.Hash{d, c}
		ls, _ := img.Layers()
		for _, l := range ls {
			h, _ := l.Digest()
			hs = append(hs, h)
		}
		for _, h := range hs {
			if err := os.Remove(filepath.Join(dir, "blobs", h.Algorithm, h.Hex)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if err := tarDir(dir, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), images
}

func TestImageLoad_IndexWithOnePlatformPresent(t *testing.T) {
	host := store.HostPlatform()
	other := v1.Platform{OS: "linux", Architecture: "arm64"}
	if host.Architecture == "arm64" {
		other.Architecture = "amd64"
	}
	for _, p := range []v1.Platform{host, other} {
		t.Run(p.String(), func(t *testing.T) {
			ctx := context.Background()
			tarball, images := partialIndexTar(t, p)
			st := newTestStore(t)
			var out bytes.Buffer
			if err := ImageLoad(ctx, st, bytes.NewReader(tarball), &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != "Loaded image: app:1\n" {
				t.Errorf("load printed %q", out.String())
			}
			_, got, err := st.Image(ctx, "app:1")
			want, _ := images[p.String()].Digest()
			if err != nil || got != want {
				t.Errorf("app:1 is %s (%v), want the %s image %s", got, err, p, want)
			}
		})
	}
}

func TestImageLoad_IndexWithNoPlatformPresentFails(t *testing.T) {
	tarball, _ := partialIndexTar(t)
	err := ImageLoad(context.Background(), newTestStore(t), bytes.NewReader(tarball), &bytes.Buffer{})
	if err == nil {
		t.Fatal("load of an index without any image content succeeded")
	}
}
