package client

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/wharf/wharf/internal/client/store"
)

// The docker save format as docker 25+ writes it: an OCI image layout
// (oci-layout, index.json, blobs/sha256/…) plus the legacy manifest.json
// and repositories files, whose layer paths point into blobs/. Layers are
// saved as stored (compressed), as docker's containerd image store does;
// docker load and skopeo decompress them, and a wharf load keeps the
// manifest digests.

// dockerManifest is one manifest.json entry.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// ImageLoad reads a docker save tar (docker 25+ with an OCI layout, or the
// older manifest.json-only format) or an OCI layout tar from r, stores its
// images and tags, and prints docker's "Loaded image: …" lines.
func ImageLoad(ctx context.Context, st *store.Store, r io.Reader, w io.Writer) error {
	tmp, err := os.MkdirTemp(st.Root(), ".load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := extractTar(ctx, r, tmp); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	var manifests []dockerManifest
	if b, err := os.ReadFile(filepath.Join(tmp, "manifest.json")); err == nil {
		if err := json.Unmarshal(b, &manifests); err != nil {
			return fmt.Errorf("load: manifest.json: %w", err)
		}
	}
	_, errLayout := os.Stat(filepath.Join(tmp, "index.json"))
	switch {
	case errLayout == nil:
		return loadLayout(ctx, st, tmp, manifests, w)
	case manifests != nil:
		return loadDockerArchive(ctx, st, tmp, manifests, w)
	default:
		return errors.New("load: not an image archive: it has neither manifest.json nor index.json")
	}
}

// extractTar unpacks regular files of an image archive into dir, refusing
// paths that leave it.
func extractTar(ctx context.Context, r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return fmt.Errorf("archive entry %q is outside the archive", h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

// loadLayout loads every manifest index.json lists. Tags come from the
// io.containerd.image.name annotation, a full reference in
// org.opencontainers.image.ref.name, or manifest.json's RepoTags.
func loadLayout(ctx context.Context, st *store.Store, dir string, manifests []dockerManifest, w io.Writer) error {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return fmt.Errorf("load: index.json: %w", err)
	}
	tagsByConfig := map[string][]string{}
	for _, m := range manifests {
		tagsByConfig[path.Base(m.Config)] = append(tagsByConfig[path.Base(m.Config)], m.RepoTags...)
	}
	for _, desc := range im.Manifests {
		var id v1.Hash
		switch {
		case desc.MediaType.IsIndex():
			child, err := ii.ImageIndex(desc.Digest)
			if err != nil {
				return fmt.Errorf("load: %w", err)
			}
			if !indexComplete(dir, child) {
				// docker 25+ with the containerd store saves a pulled image
				// as its whole index but only the platforms it has: load
				// those, as the image the tag names.
				img, err := availableImage(dir, child)
				if err != nil {
					return fmt.Errorf("load index %s: %w", desc.Digest, err)
				}
				if err := st.WriteImage(ctx, img); err != nil {
					return fmt.Errorf("load image: %w", err)
				}
				if id, err = img.ConfigName(); err != nil {
					return err
				}
				d, err := img.Digest()
				if err != nil {
					return err
				}
				if err := tagLoaded(ctx, st, d, id, loadNames(desc, tagsByConfig, id), w); err != nil {
					return err
				}
				continue
			}
			if err := st.WriteIndex(ctx, child); err != nil {
				return fmt.Errorf("load index %s: %w", desc.Digest, err)
			}
			if id, err = loadedID(ctx, st, desc.Digest); err != nil {
				return err
			}
		case desc.MediaType.IsImage():
			img, err := ii.Image(desc.Digest)
			if err != nil {
				return fmt.Errorf("load: %w", err)
			}
			if err := st.WriteImage(ctx, img); err != nil {
				return fmt.Errorf("load image %s: %w", desc.Digest, err)
			}
			if id, err = img.ConfigName(); err != nil {
				return err
			}
		default:
			continue
		}
		if err := tagLoaded(ctx, st, desc.Digest, id, loadNames(desc, tagsByConfig, id), w); err != nil {
			return err
		}
	}
	return nil
}

// loadNames are the tags of one index.json entry: its
// io.containerd.image.name, a full reference in
// org.opencontainers.image.ref.name, or manifest.json's RepoTags for the
// image with ID id.
func loadNames(desc v1.Descriptor, tagsByConfig map[string][]string, id v1.Hash) []string {
	if n := desc.Annotations[annotationContainerdName]; n != "" {
		return []string{n}
	}
	if n := desc.Annotations[annotationRefName]; strings.ContainsAny(n, ":/") {
		return []string{n}
	}
	return tagsByConfig[id.Hex]
}

// hasBlob reports whether the extracted layout in dir holds blob h.
func hasBlob(dir string, h v1.Hash) bool {
	fi, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
	return err == nil && fi.Mode().IsRegular()
}

// imageComplete reports whether the manifest, config and every
// distributable layer of the image descriptor d are in dir.
func imageComplete(dir string, ii v1.ImageIndex, d v1.Descriptor) bool {
	if !hasBlob(dir, d.Digest) {
		return false
	}
	img, err := ii.Image(d.Digest)
	if err != nil {
		return false
	}
	m, err := img.Manifest()
	if err != nil || !hasBlob(dir, m.Config.Digest) {
		return false
	}
	for _, l := range m.Layers {
		if l.MediaType.IsDistributable() && !hasBlob(dir, l.Digest) {
			return false
		}
	}
	return true
}

// indexComplete reports whether every image and index under ii is in dir.
func indexComplete(dir string, ii v1.ImageIndex) bool {
	im, err := ii.IndexManifest()
	if err != nil {
		return false
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil || !indexComplete(dir, child) {
				return false
			}
		case d.MediaType.IsImage():
			if !imageComplete(dir, ii, d) {
				return false
			}
		}
	}
	return true
}

// availableImage picks, from an index whose content is only partly in dir,
// the host platform's image if it is complete, else the first complete
// image with a real platform (attestations have unknown/unknown).
func availableImage(dir string, ii v1.ImageIndex) (v1.Image, error) {
	var first v1.Image
	host := store.HostPlatform()
	var walk func(ii v1.ImageIndex) (v1.Image, error)
	walk = func(ii v1.ImageIndex) (v1.Image, error) {
		im, err := ii.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			if d.MediaType.IsIndex() && hasBlob(dir, d.Digest) {
				child, err := ii.ImageIndex(d.Digest)
				if err != nil {
					return nil, err
				}
				if img, err := walk(child); err != nil || img != nil {
					return img, err
				}
				continue
			}
			if !d.MediaType.IsImage() || (d.Platform != nil && d.Platform.OS == "unknown") || !imageComplete(dir, ii, d) {
				continue
			}
			img, err := ii.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			if d.Platform != nil && d.Platform.OS == host.OS && d.Platform.Architecture == host.Architecture {
				return img, nil
			}
			if first == nil {
				first = img
			}
		}
		return nil, nil
	}
	img, err := walk(ii)
	if err != nil || img != nil {
		return img, err
	}
	if first == nil {
		return nil, errors.New("the archive holds none of its platforms' images")
	}
	return first, nil
}

// loadedID is the image ID an index resolves to, for "Loaded image ID".
func loadedID(ctx context.Context, st *store.Store, h v1.Hash) (v1.Hash, error) {
	img, _, err := st.Image(ctx, h.String())
	if err != nil {
		return v1.Hash{}, nil // no image for this platform: print no ID
	}
	return img.ConfigName()
}

// loadDockerArchive loads the pre-25 docker save format (manifest.json with
// per-layer tar files) through go-containerregistry's tarball reader.
func loadDockerArchive(ctx context.Context, st *store.Store, dir string, manifests []dockerManifest, w io.Writer) error {
	for _, m := range manifests {
		img, err := dockerArchiveImage(dir, m)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if err := st.WriteImage(ctx, img); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		id, err := img.ConfigName()
		if err != nil {
			return err
		}
		if err := tagLoaded(ctx, st, d, id, m.RepoTags, w); err != nil {
			return err
		}
	}
	return nil
}

func tagLoaded(ctx context.Context, st *store.Store, d, id v1.Hash, names []string, w io.Writer) error {
	tagged := 0
	for _, n := range names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return fmt.Errorf("load: invalid tag %q in archive: %w", n, err)
		}
		named = reference.TagNameOnly(named)
		if err := st.Tag(ctx, named, d); err != nil {
			return err
		}
		fmt.Fprintf(w, "Loaded image: %s\n", reference.FamiliarString(named))
		tagged++
	}
	if tagged == 0 && id.Hex != "" {
		fmt.Fprintf(w, "Loaded image ID: %s\n", id)
	}
	return nil
}

// dockerArchiveImage builds the image of one manifest.json entry from the
// extracted files: the config as is, each layer from its (possibly
// uncompressed) tar, in docker's schema 2 media types.
func dockerArchiveImage(dir string, m dockerManifest) (v1.Image, error) {
	opener := func(p string) tarball.Opener {
		return func() (io.ReadCloser, error) { return os.Open(filepath.Join(dir, filepath.FromSlash(path.Clean(p)))) }
	}
	cfg, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path.Clean(m.Config))))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config, err)
	}
	var layers []v1.Layer
	for _, l := range m.Layers {
		layer, err := tarball.LayerFromOpener(opener(l))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l, err)
		}
		layers = append(layers, layer)
	}
	return newArchiveImage(cfg, layers)
}

// archiveImage is an image made of a config kept byte for byte (so its ID
// is preserved) and layers; its manifest is generated.
type archiveImage struct {
	config   []byte
	layers   []v1.Layer
	manifest []byte
}

var _ partial.CompressedImageCore = (*archiveImage)(nil)

func newArchiveImage(config []byte, layers []v1.Layer) (v1.Image, error) {
	cf, err := v1.ParseConfigFile(strings.NewReader(string(config)))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(cf.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("config lists %d layers, archive has %d", len(cf.RootFS.DiffIDs), len(layers))
	}
	cfgDigest, cfgSize, err := v1.SHA256(strings.NewReader(string(config)))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: cfgSize, Digest: cfgDigest}}
	for i, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		if diffID != cf.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("layer %d has content %s, but the config expects %s", i, diffID, cf.RootFS.DiffIDs[i])
		}
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: size, Digest: d})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&archiveImage{config: config, layers: layers, manifest: raw})
}

func (a *archiveImage) RawConfigFile() ([]byte, error) { return a.config, nil }
func (a *archiveImage) MediaType() (types.MediaType, error) {
	return types.DockerManifestSchema2, nil
}
func (a *archiveImage) RawManifest() ([]byte, error) { return a.manifest, nil }
func (a *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range a.layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("layer %s not in archive", h)
}
