package build

import (
	"errors"
	"fmt"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// ErrNotOnBase is returned (wrapped, saying where the layers differ) when
// an image's layers do not start with the old base's.
var ErrNotOnBase = errors.New("image is not built on the old base")

// Rebase returns orig moved from oldBase onto newBase: newBase's layers,
// then orig's own layers (those above oldBase's), with orig's config whose
// diff_ids and history have the base's part replaced by newBase's, and
// the OCI base annotations naming newBase (name, and digest from the image
// itself). The layers stay what they are, so a registry can mount them.
func Rebase(orig, oldBase, newBase v1.Image, newBaseName string) (v1.Image, error) {
	oc, err := orig.ConfigFile()
	if err != nil {
		return nil, err
	}
	ob, err := oldBase.ConfigFile()
	if err != nil {
		return nil, err
	}
	nb, err := newBase.ConfigFile()
	if err != nil {
		return nil, err
	}
	have, base := oc.RootFS.DiffIDs, ob.RootFS.DiffIDs
	if len(base) > len(have) {
		return nil, fmt.Errorf("%w: the image has %d layers, the old base %d", ErrNotOnBase, len(have), len(base))
	}
	for i := range base {
		if have[i] != base[i] {
			return nil, fmt.Errorf("%w: layer %d of the image is %s, the old base's is %s", ErrNotOnBase, i+1, have[i], base[i])
		}
	}
	if len(ob.History) > len(oc.History) {
		return nil, fmt.Errorf("%w: the image has %d history entries, the old base %d", ErrNotOnBase, len(oc.History), len(ob.History))
	}
	layers, err := orig.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(have) {
		return nil, fmt.Errorf("image has %d layers but its config lists %d", len(layers), len(have))
	}
	img, err := mutate.AppendLayers(plainManifest{newBase}, layers[len(base):]...)
	if err != nil {
		return nil, err
	}
	cf := oc.DeepCopy()
	cf.RootFS.DiffIDs = append(append([]v1.Hash(nil), nb.RootFS.DiffIDs...), have[len(base):]...)
	cf.History = append(append([]v1.History(nil), nb.History...), oc.History[len(ob.History):]...)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	d, err := newBase.Digest()
	if err != nil {
		return nil, err
	}
	m, err := orig.Manifest()
	if err != nil {
		return nil, err
	}
	anns := maps.Clone(m.Annotations)
	if anns == nil {
		anns = map[string]string{}
	}
	anns[AnnotationBaseName] = newBaseName
	anns[AnnotationBaseDigest] = d.String()
	return mutate.Annotations(img, anns).(v1.Image), nil
}

// plainManifest is an image whose manifest annotations are not inherited
// by what is built on it: they describe the base, not its children.
type plainManifest struct{ v1.Image }

// Manifest implements v1.Image.
func (p plainManifest) Manifest() (*v1.Manifest, error) {
	m, err := p.Image.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	m.Annotations = nil
	return m, nil
}
