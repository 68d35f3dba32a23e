package replicate

import (
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Mounts remembers, per destination registry and blob, the repository
// the blob was last written to, so that a copy into another repository of
// that registry asks for a cross-repository mount from there instead of
// sending the bytes again (images sharing a base share its layers). ggcr
// asks the destination repository first, so a blob it has already is
// never sent either way. Mounts is a bounded memory: what it forgot, or a
// mount the destination refuses, costs an upload, never a wrong blob.
type Mounts struct {
	mu    sync.Mutex
	max   int
	where map[mountKey]name.Repository
	order []mountKey // oldest first, for eviction
}

type mountKey struct{ registry, digest string }

// NewMounts returns a memory of at most max blobs.
func NewMounts(max int) *Mounts {
	return &Mounts{max: max, where: make(map[mountKey]name.Repository)}
}

// image wraps img so that its layers mount from where m saw them at
// dst's registry. The source's own mount hints are dropped: the
// source's repositories mean nothing at another registry.
func (m *Mounts) image(img v1.Image, dst name.Repository) v1.Image {
	if m == nil {
		return img
	}
	return &mountingImage{Image: img, m: m, dst: dst}
}

// wrote records that img's layers are now in dst.
func (m *Mounts) wrote(img v1.Image, dst name.Repository) {
	if m == nil {
		return
	}
	ls, err := img.Layers()
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			continue
		}
		k := mountKey{dst.RegistryStr(), d.String()}
		if _, ok := m.where[k]; !ok {
			m.order = append(m.order, k)
		}
		m.where[k] = dst
		for len(m.order) > m.max {
			delete(m.where, m.order[0])
			m.order = m.order[1:]
		}
	}
}

func (m *Mounts) layer(l v1.Layer, dst name.Repository) v1.Layer {
	if ml, ok := l.(*remote.MountableLayer); ok {
		l = ml.Layer
	}
	d, err := l.Digest()
	if err != nil {
		return l
	}
	m.mu.Lock()
	from, ok := m.where[mountKey{dst.RegistryStr(), d.String()}]
	m.mu.Unlock()
	if !ok || from.String() == dst.String() {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: from.Digest(d.String())}
}

type mountingImage struct {
	v1.Image
	m   *Mounts
	dst name.Repository
}

func (i *mountingImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for j, l := range ls {
		out[j] = i.m.layer(l, i.dst)
	}
	return out, nil
}

func (i *mountingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return i.m.layer(l, i.dst), nil
}

// index wraps idx so that the layers of its images, at any depth, mount
// as image's do; wroteIndex records them once the index is written.
func (m *Mounts) index(idx v1.ImageIndex, dst name.Repository) v1.ImageIndex {
	if m == nil {
		return idx
	}
	return &mountingIndex{idx: idx, m: m, dst: dst, children: &childImages{}}
}

// wroteIndex records that the layers of idx's images are now in dst.
func (m *Mounts) wroteIndex(idx v1.ImageIndex) {
	mi, ok := idx.(*mountingIndex)
	if !ok {
		return
	}
	mi.children.mu.Lock()
	defer mi.children.mu.Unlock()
	for _, img := range mi.children.imgs {
		m.wrote(img, mi.dst)
	}
}

// childImages are the images an index (and the indexes in it) handed to
// the writer: ggcr writes them through Image, in parallel.
type childImages struct {
	mu   sync.Mutex
	imgs []v1.Image
}

// mountingIndex hands ggcr's writer its children through Image and
// ImageIndex, wrapped, and hides the source index's own Manifests (if
// any), which would hand them out unwrapped. It cannot embed
// v1.ImageIndex: it has a method of that name.
type mountingIndex struct {
	idx      v1.ImageIndex
	m        *Mounts
	dst      name.Repository
	children *childImages
}

func (i *mountingIndex) MediaType() (types.MediaType, error)       { return i.idx.MediaType() }
func (i *mountingIndex) Digest() (v1.Hash, error)                  { return i.idx.Digest() }
func (i *mountingIndex) Size() (int64, error)                      { return i.idx.Size() }
func (i *mountingIndex) IndexManifest() (*v1.IndexManifest, error) { return i.idx.IndexManifest() }
func (i *mountingIndex) RawManifest() ([]byte, error)              { return i.idx.RawManifest() }

func (i *mountingIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := i.idx.Image(h)
	if err != nil {
		return nil, err
	}
	i.children.mu.Lock()
	i.children.imgs = append(i.children.imgs, img)
	i.children.mu.Unlock()
	return i.m.image(img, i.dst), nil
}

func (i *mountingIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := i.idx.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &mountingIndex{idx: idx, m: i.m, dst: i.dst, children: i.children}, nil
}

// withLayer is an index that serves its children that are blobs (ggcr's
// remote index is one).
type withLayer interface {
	Layer(v1.Hash) (v1.Layer, error)
}

// Layer serves a child that is neither an image nor an index (an
// artifact), as the source index would have to ggcr's writer.
func (i *mountingIndex) Layer(h v1.Hash) (v1.Layer, error) {
	if wl, ok := i.idx.(withLayer); ok {
		return wl.Layer(h)
	}
	return nil, fmt.Errorf("index child %s is neither an image nor an index", h)
}
