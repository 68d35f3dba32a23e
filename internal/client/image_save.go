package client

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf/wharf/internal/client/store"
)

// savedManifest is one stored manifest to write (an image, or an index and
// the images under it) with the tags it is saved under.
type savedManifest struct {
	desc v1.Descriptor
	tags []reference.NamedTagged
}

// ImageSave writes the images refs name to w as a docker save tar. A bare
// repository name saves every tag of that repository, as docker does. A
// tag on a multi-platform index saves the whole index with every platform
// the store holds, as docker 25+ does; manifest.json, which has room for
// one image per entry, names the host platform's image (else the first
// one), which is what an older docker engine loads.
func ImageSave(ctx context.Context, st *store.Store, refs []string, w io.Writer) error {
	if len(refs) == 0 {
		return errors.New("no images to save: name at least one image")
	}
	saved, err := collectSaved(ctx, st, refs)
	if err != nil {
		return err
	}
	aw := newArchiveWriter(w)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := aw.dir(dir); err != nil {
			return err
		}
	}
	var manifests []dockerManifest
	repos := map[string]map[string]string{}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, s := range saved {
		if err := ctx.Err(); err != nil {
			return err
		}
		var main v1.Image // the image manifest.json names
		if s.desc.MediaType.IsIndex() {
			ii, err := st.ImageIndex(ctx, s.desc.Digest)
			if err != nil {
				return err
			}
			if main, err = aw.index(ii, st.HasBlob); err != nil {
				return err
			}
		} else {
			if main, err = st.Layout().Image(s.desc.Digest); err != nil {
				return err
			}
		}
		base := v1.Descriptor{MediaType: s.desc.MediaType, Size: s.desc.Size, Digest: s.desc.Digest}
		if len(s.tags) == 0 {
			index.Manifests = append(index.Manifests, base)
		}
		for _, t := range s.tags {
			d := base
			d.Annotations = map[string]string{annotationContainerdName: t.String(), annotationRefName: t.Tag()}
			index.Manifests = append(index.Manifests, d)
		}
		if main == nil {
			continue // an index without a runnable image: nothing for manifest.json
		}
		dm, top, err := aw.image(main)
		if err != nil {
			return err
		}
		for _, t := range s.tags {
			dm.RepoTags = append(dm.RepoTags, reference.FamiliarString(t))
			name := reference.FamiliarName(t)
			if repos[name] == nil {
				repos[name] = map[string]string{}
			}
			repos[name][t.Tag()] = top
		}
		manifests = append(manifests, dm)
	}
	files := []struct {
		name string
		v    any
	}{{"index.json", index}, {"manifest.json", manifests}, {"oci-layout", map[string]string{"imageLayoutVersion": "1.0.0"}}}
	if len(repos) > 0 {
		files = append(files, struct {
			name string
			v    any
		}{"repositories", repos})
	}
	for _, f := range files {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := aw.file(f.name, b); err != nil {
			return err
		}
	}
	return aw.tw.Close()
}

// archiveWriter writes the entries of a docker save tar, each blob once.
type archiveWriter struct {
	tw      *tar.Writer
	written map[v1.Hash]bool
}

// archiveTime is the modification time of every entry, so that saving the
// same images twice gives the same bytes.
var archiveTime = time.Unix(0, 0)

func newArchiveWriter(w io.Writer) *archiveWriter {
	return &archiveWriter{tw: tar.NewWriter(w), written: map[v1.Hash]bool{}}
}

func (a *archiveWriter) dir(name string) error {
	return a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, ModTime: archiveTime, Typeflag: tar.TypeDir})
}

func (a *archiveWriter) file(name string, b []byte) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: archiveTime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := a.tw.Write(b)
	return err
}

// blob writes blobs/sha256/HEX from open unless it is in the archive already.
func (a *archiveWriter) blob(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	if a.written[h] {
		return nil
	}
	a.written[h] = true
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := a.tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + h.Hex, Mode: 0o644, Size: size, ModTime: archiveTime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(a.tw, rc); err != nil {
		return fmt.Errorf("save blob %s: %w", h, err)
	}
	return nil
}

func (a *archiveWriter) bytesBlob(h v1.Hash, b []byte) error {
	return a.blob(h, int64(len(b)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// image writes an image's layers, config and manifest, and returns its
// manifest.json entry (without tags) and the hex of its top layer.
func (a *archiveWriter) image(img v1.Image) (dockerManifest, string, error) {
	dm := dockerManifest{RepoTags: []string{}}
	layers, err := img.Layers()
	if err != nil {
		return dm, "", err
	}
	var top string
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return dm, "", err
		}
		size, err := l.Size()
		if err != nil {
			return dm, "", err
		}
		if err := a.blob(h, size, l.Compressed); err != nil {
			return dm, "", err
		}
		dm.Layers = append(dm.Layers, "blobs/sha256/"+h.Hex)
		top = h.Hex
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return dm, "", err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return dm, "", err
	}
	if err := a.bytesBlob(cfgName, rawCfg); err != nil {
		return dm, "", err
	}
	dm.Config = "blobs/sha256/" + cfgName.Hex
	d, err := img.Digest()
	if err != nil {
		return dm, "", err
	}
	rawMan, err := img.RawManifest()
	if err != nil {
		return dm, "", err
	}
	return dm, top, a.bytesBlob(d, rawMan)
}

// index writes an index and every image and index under it that the store
// holds (present reports whether a manifest is stored), and returns the
// image manifest.json should name: the host platform's, else the first
// image with a real platform (not an attestation's unknown/unknown), else
// nil.
func (a *archiveWriter) index(ii v1.ImageIndex, present func(v1.Hash) bool) (v1.Image, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	host := store.HostPlatform()
	var best, first v1.Image
	for _, d := range im.Manifests {
		if !present(d.Digest) {
			continue // a platform that was never pulled, as docker skips it
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			img, err := a.index(child, present)
			if err != nil {
				return nil, err
			}
			if first == nil {
				first = img
			}
		case d.MediaType.IsImage():
			img, err := ii.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			if _, _, err := a.image(img); err != nil {
				return nil, err
			}
			p := d.Platform
			if p == nil || p.OS == "unknown" {
				continue
			}
			if best == nil && p.OS == host.OS && p.Architecture == host.Architecture {
				best = img
			}
			if first == nil {
				first = img
			}
		}
	}
	raw, err := ii.RawManifest()
	if err != nil {
		return nil, err
	}
	d, err := ii.Digest()
	if err != nil {
		return nil, err
	}
	if err := a.bytesBlob(d, raw); err != nil {
		return nil, err
	}
	if best != nil {
		return best, nil
	}
	return first, nil
}

// collectSaved resolves the save arguments to stored manifests and their
// tags.
func collectSaved(ctx context.Context, st *store.Store, refs []string) ([]*savedManifest, error) {
	var out []*savedManifest
	add := func(desc v1.Descriptor, tag reference.NamedTagged) {
		i := slices.IndexFunc(out, func(s *savedManifest) bool { return s.desc.Digest == desc.Digest })
		if i < 0 {
			out = append(out, &savedManifest{desc: desc})
			i = len(out) - 1
		}
		if tag != nil && !slices.ContainsFunc(out[i].tags, func(t reference.NamedTagged) bool { return t.String() == tag.String() }) {
			out[i].tags = append(out[i].tags, tag)
		}
	}
	var entries []store.Entry
	for _, r := range refs {
		// A bare repository name ("ubuntu") saves all of its tags.
		if named, err := reference.ParseNormalizedNamed(r); err == nil && reference.IsNameOnly(named) {
			if entries == nil {
				if entries, err = st.Images(ctx); err != nil {
					return nil, err
				}
			}
			found := false
			for _, e := range entries {
				if t, ok := e.Ref.(reference.NamedTagged); ok && e.Ref.Name() == named.Name() {
					desc, err := st.Resolve(ctx, t.String())
					if err != nil {
						return nil, err
					}
					add(desc, t)
					found = true
				}
			}
			if found {
				continue
			}
		}
		desc, err := st.Resolve(ctx, r)
		if err != nil {
			return nil, err
		}
		var tag reference.NamedTagged
		if named, err := reference.ParseNormalizedNamed(r); err == nil {
			if t, ok := reference.TagNameOnly(named).(reference.NamedTagged); ok {
				if _, canonical := named.(reference.Canonical); !canonical {
					tag = t
				}
			}
		}
		add(desc, tag)
	}
	return out, nil
}
