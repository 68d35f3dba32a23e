package replicate

import (
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
