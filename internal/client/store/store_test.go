package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

func named(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return reference.TagNameOnly(n)
}

func newImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// put writes img and tags it with each ref.
func put(t *testing.T, s *Store, img v1.Image, refs ...string) v1.Hash {
	t.Helper()
	ctx := context.Background()
	if err := s.WriteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	for _, r := range refs {
		if err := s.Tag(ctx, named(t, r), d); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func openStore(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestImage_ResolvesLikeDocker(t *testing.T) {
	s := openStore(t, t.TempDir())
	img := newImage(t)
	d := put(t, s, img, "ubuntu", "localhost:5000/gallery/ui:v1")
	id, _ := img.ConfigName()
	for _, q := range []string{
		"ubuntu", "ubuntu:latest", "docker.io/library/ubuntu:latest", "library/ubuntu",
		"localhost:5000/gallery/ui:v1", "ubuntu@" + d.String(),
		id.Hex, id.String(), id.Hex[:12], "sha256:" + id.Hex[:6],
	} {
		got, gotD, err := s.Image(context.Background(), q)
		if err != nil {
			t.Errorf("Image(%q): %v", q, err)
			continue
		}
		gotID, _ := got.ConfigName()
		if gotD != d || gotID != id {
			t.Errorf("Image(%q) = %s/%s, want %s/%s", q, gotD, gotID, d, id)
		}
	}
	for _, q := range []string{"ubuntu:22.04", "debian", "ffffffffffff"} {
		_, _, err := s.Image(context.Background(), q)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Image(%q) err = %v, want ErrNotFound", q, err)
		}
		if err != nil && err.Error() != "No such image: "+q {
			t.Errorf("Image(%q) message = %q", q, err)
		}
	}
}

func TestImages_ListsTagsAndDangling(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	a, b := newImage(t), newImage(t)
	put(t, s, a, "app:v1", "app:latest")
	put(t, s, b, "app:v1") // moves app:v1; a keeps app:latest
	c := newImage(t)
	put(t, s, c) // dangling

	es, err := s.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		name := "<none>"
		if e.Ref != nil {
			name = e.Ref.String()
		}
		got = append(got, name)
	}
	slices.Sort(got)
	want := []string{"<none>", "docker.io/library/app:latest", "docker.io/library/app:v1"}
	if !slices.Equal(got, want) {
		t.Fatalf("Images = %v, want %v", got, want)
	}
	_, d, _ := s.Image(ctx, "app:v1")
	if bd, _ := b.Digest(); d != bd {
		t.Errorf("app:v1 = %s, want the re-tagged image %s", d, bd)
	}
}

func TestSetRepoDigest_ShowsInImages(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	img := newImage(t)
	d := put(t, s, img, "localhost:5000/app:v1")
	if err := s.SetRepoDigest(ctx, named(t, "localhost:5000/app:v1"), d); err != nil {
		t.Fatal(err)
	}
	es, _ := s.Images(ctx)
	if len(es) != 1 || es[0].RepoDigest != "localhost:5000/app@"+d.String() {
		t.Fatalf("entries = %+v", es)
	}
	if err := s.SetRepoDigest(ctx, named(t, "x"), v1.Hash{Algorithm: "sha256", Hex: d.Hex[:60] + "0000"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetRepoDigest(unknown digest) err = %v", err)
	}
}

func TestTag_ConcurrentWritersLoseNothing(t *testing.T) {
	root := t.TempDir()
	stores := []*Store{openStore(t, root), openStore(t, root)}
	img := newImage(t)
	d := put(t, stores[0], img)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 40 {
		wg.Go(func() {
			s := stores[i%2]
			if i%4 == 3 {
				// another image written concurrently
				other := newImage(t)
				if err := s.WriteImage(context.Background(), other); err != nil {
					errs <- err
					return
				}
				od, _ := other.Digest()
				errs <- s.Tag(context.Background(), named(t, fmt.Sprintf("other:%d", i)), od)
				return
			}
			errs <- s.Tag(context.Background(), named(t, fmt.Sprintf("app:%d", i)), d)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	es, err := openStore(t, root).Images(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 40 {
		t.Fatalf("got %d tags, want 40", len(es))
	}
}

func TestRemove_DockerRmiSemantics(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	base := newImage(t)
	layer, _ := random.Layer(128, "")
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, base, "base:1")
	d := put(t, s, img, "app:v1", "app:v2", "other/app:v1")
	id, _ := img.ConfigName()

	// By name with other tags left: untag only.
	lines, err := s.Remove(ctx, "app:v2", false)
	if err != nil || !slices.Equal(lines, []string{"Untagged: app:v2"}) {
		t.Fatalf("rmi app:v2 = %q, %v", lines, err)
	}
	// By ID with tags in two repositories: conflict without force.
	_, err = s.Remove(ctx, id.Hex[:12], false)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("rmi ID err = %v, want conflict", err)
	}
	want := fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", id.Hex[:12])
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	// Force: everything untagged and deleted; shared base layers kept.
	lines, err = s.Remove(ctx, id.Hex[:12], true)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{"Untagged: app:v1", "Untagged: other/app:v1", "Deleted: " + id.String()}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("lines = %q, want %q", lines, wantLines)
	}
	ld, _ := layer.Digest()
	if s.HasBlob(ld) || s.HasBlob(d) || s.HasBlob(id) {
		t.Error("blobs only the removed image used are still stored")
	}
	bl, _ := base.Layers()
	bd, _ := bl[0].Digest()
	if !s.HasBlob(bd) {
		t.Error("a layer base:1 still uses was deleted")
	}
	if _, _, err := s.Image(ctx, "base:1"); err != nil {
		t.Errorf("base:1 after removing app: %v", err)
	}
	// Last tag by name: untag and delete.
	lines, err = s.Remove(ctx, "base:1", false)
	baseID, _ := base.ConfigName()
	if err != nil || !slices.Equal(lines, []string{"Untagged: base:1", "Deleted: " + baseID.String()}) {
		t.Fatalf("rmi base:1 = %q, %v", lines, err)
	}
	if s.HasBlob(bd) {
		t.Error("layer of the last image still stored")
	}
	if _, err := s.Remove(ctx, "base:1", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("second rmi err = %v", err)
	}
}

func TestRemove_SingleRepositoryByIDWithoutForce(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	img := newImage(t)
	d := put(t, s, img, "app:v1")
	_ = s.SetRepoDigest(ctx, named(t, "app"), d)
	id, _ := img.ConfigName()
	lines, err := s.Remove(ctx, id.Hex, false)
	want := []string{"Untagged: app:v1", "Untagged: app@" + d.String(), "Deleted: " + id.String()}
	if err != nil || !slices.Equal(lines, want) {
		t.Fatalf("rmi = %q, %v; want %q", lines, err, want)
	}
}

func TestWriteIndex_ResolvesHostPlatform(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	amd, arm := newImage(t), newImage(t)
	host := HostPlatform()
	otherArch := "s390x"
	if host.Architecture == otherArch {
		otherArch = "ppc64le"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &host}},
	)
	if err := s.WriteIndex(ctx, idx); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()
	if err := s.Tag(ctx, named(t, "multi:1"), id); err != nil {
		t.Fatal(err)
	}
	got, gd, err := s.Image(ctx, "multi:1")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := amd.Digest()
	if gd != want {
		t.Errorf("resolved %s, want host image %s", gd, want)
	}
	if _, err := got.Layers(); err != nil {
		t.Error(err)
	}
	if desc, err := s.Resolve(ctx, "multi:1"); err != nil || desc.Digest != id {
		t.Errorf("Resolve = %v, %v; want the index %s", desc.Digest, err, id)
	}
}
