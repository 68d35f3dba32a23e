package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Entry is one row of `image ls`: a tag, or a dangling image.
type Entry struct {
	// Ref is the tag (a normalised reference.NamedTagged); nil for a
	// dangling image or one known only by its repository digest.
	Ref reference.Named
	// Manifest is the digest of the tagged manifest (image or index).
	Manifest v1.Hash
	// ID is the image ID: the config digest, as in docker. For an index it
	// is the ID of the host platform's image.
	ID v1.Hash
	// Created comes from the image config.
	Created time.Time
	// Labels are the image config's labels (for `image ls --filter label=`).
	Labels map[string]string
	// Size is the sum of the compressed layer sizes plus the config size:
	// what the image occupies in the store and on the wire. (docker's
	// classic store shows the uncompressed size instead.)
	Size int64
	// RepoDigest is "name@sha256:…" (full normalised name) when a push or
	// pull recorded the manifest digest for Ref's repository; else "".
	RepoDigest string
}

// record is an image known to the store: its manifest descriptor, tags and
// repository digests, assembled from index.json.
type record struct {
	desc  v1.Descriptor
	tags  []reference.NamedTagged
	repos []reference.Canonical
}

// records groups index.json entries by manifest digest, in index order.
func records(idx *v1.IndexManifest) []*record {
	var out []*record
	by := map[v1.Hash]*record{}
	get := func(d v1.Descriptor) *record {
		r, ok := by[d.Digest]
		if !ok {
			r = &record{desc: v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}}
			by[d.Digest] = r
			out = append(out, r)
		}
		return r
	}
	for _, d := range idx.Manifests {
		r := get(d)
		if name := refName(d); name != "" {
			// Entries written by other tools may carry a bare tag ("v1");
			// only full references are tags here.
			if named, err := reference.ParseNormalizedNamed(name); err == nil {
				if t, ok := named.(reference.NamedTagged); ok {
					r.tags = append(r.tags, t)
				}
			}
			continue
		}
		r.repos = append(r.repos, repoRefs(d)...)
	}
	for _, r := range out {
		slices.SortFunc(r.tags, func(a, b reference.NamedTagged) int { return strings.Compare(a.String(), b.String()) })
	}
	return out
}

// image loads the image a record stands for; an index resolves to the host
// platform's image, as docker does.
func (s *Store) image(desc v1.Descriptor) (v1.Image, v1.Hash, error) {
	if !desc.MediaType.IsIndex() {
		img, err := s.path.Image(desc.Digest)
		return img, desc.Digest, err
	}
	ii, err := s.path.ImageIndex()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	ii, err = ii.ImageIndex(desc.Digest)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return platformImage(ii, HostPlatform())
}

// HostPlatform is the platform an index resolves to by default.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
		p.OS = runtime.GOOS
	}
	return p
}

func platformImage(ii v1.ImageIndex, want v1.Platform) (v1.Image, v1.Hash, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		if d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture &&
			(want.Variant == "" || d.Platform.Variant == want.Variant) {
			img, err := ii.Image(d.Digest)
			return img, d.Digest, err
		}
	}
	return nil, v1.Hash{}, fmt.Errorf("%w: no matching manifest for %s/%s in the manifest list entries", ErrNotFound, want.OS, want.Architecture)
}

// imageID returns the config digest of the record's image.
func (s *Store) imageID(desc v1.Descriptor) (v1.Hash, error) {
	img, _, err := s.image(desc)
	if err != nil {
		return v1.Hash{}, err
	}
	return img.ConfigName()
}

var (
	fullIDRe   = regexp.MustCompile(`^(sha256:)?[a-f0-9]{64}$`)
	idPrefixRe = regexp.MustCompile(`^(sha256:)?[a-f0-9]+$`)
)

// find resolves s against the records the way docker does: a full image ID
// (64 hex, with or without "sha256:"), then a name (tag defaulted to
// latest) or name@digest, then a unique image ID prefix. byID says whether
// s named the image by its ID.
func (s *Store) find(recs []*record, str string) (rs []*record, byID bool, err error) {
	notFound := fmt.Errorf("%w: %s", ErrNotFound, str)
	if fullIDRe.MatchString(str) {
		return s.findByIDPrefix(recs, strings.TrimPrefix(str, "sha256:"), notFound)
	}
	if named, perr := reference.ParseNormalizedNamed(str); perr == nil {
		named = reference.TagNameOnly(named)
		if c, ok := named.(reference.Canonical); ok {
			for _, r := range recs {
				if r.desc.Digest.String() == c.Digest().String() {
					return []*record{r}, false, nil
				}
			}
			// The digest of an index the image was pulled through.
			for _, r := range recs {
				for _, repo := range r.repos {
					if repo.String() == c.String() {
						return []*record{r}, false, nil
					}
				}
			}
		} else if t, ok := named.(reference.NamedTagged); ok {
			for _, r := range recs {
				for _, tag := range r.tags {
					if tag.String() == t.String() {
						return []*record{r}, false, nil
					}
				}
			}
		}
	}
	if idPrefixRe.MatchString(str) {
		return s.findByIDPrefix(recs, strings.TrimPrefix(str, "sha256:"), notFound)
	}
	if _, perr := reference.ParseNormalizedNamed(str); perr != nil {
		return nil, false, fmt.Errorf("%q is not a valid repository/tag: %w", str, perr)
	}
	return nil, false, notFound
}

// findByIDPrefix returns every record whose image ID starts with prefix; all
// must share one ID, else the prefix is ambiguous.
func (s *Store) findByIDPrefix(recs []*record, prefix string, notFound error) ([]*record, bool, error) {
	var out []*record
	var id v1.Hash
	for _, r := range recs {
		rid, err := s.imageID(r.desc)
		if err != nil {
			continue // an index without an image for this platform has no ID here
		}
		if !strings.HasPrefix(rid.Hex, prefix) {
			continue
		}
		if len(out) > 0 && rid != id {
			return nil, true, fmt.Errorf("%w: image ID prefix %q is ambiguous", ErrNotFound, prefix)
		}
		id = rid
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, true, notFound
	}
	return out, true, nil
}

// Image resolves a reference string as docker does — a name or name:tag
// (normalised, tag defaulted to latest), name@digest, a full image ID or a
// unique ID prefix — and returns the image and its manifest digest. A tag
// on an index resolves to the host platform's image.
func (s *Store) Image(ctx context.Context, str string) (v1.Image, v1.Hash, error) {
	desc, err := s.Resolve(ctx, str)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return s.image(desc)
}

// PlatformImage is Image for a given platform: a tag on an index resolves
// to that platform's image (ErrNotFound when the index has none stored).
func (s *Store) PlatformImage(ctx context.Context, str string, p v1.Platform) (v1.Image, v1.Hash, error) {
	desc, err := s.Resolve(ctx, str)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if !desc.MediaType.IsIndex() {
		return s.image(desc)
	}
	ii, err := s.ImageIndex(ctx, desc.Digest)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return platformImage(ii, p)
}

// Resolve is Image without loading it: the descriptor of the stored manifest
// (image or index) that str names, for pushing an index as a whole.
func (s *Store) Resolve(ctx context.Context, str string) (v1.Descriptor, error) {
	var desc v1.Descriptor
	err := s.view(ctx, func(idx *v1.IndexManifest) error {
		rs, _, err := s.find(records(idx), str)
		if err != nil {
			return err
		}
		desc = rs[0].desc
		return nil
	})
	return desc, err
}

// ImageIndex returns the stored index with digest h.
func (s *Store) ImageIndex(ctx context.Context, h v1.Hash) (v1.ImageIndex, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ii, err := s.path.ImageIndex()
	if err != nil {
		return nil, err
	}
	return ii.ImageIndex(h)
}

// Images lists every tag, and every image without tags (dangling, or known
// only by a repository digest), newest first as docker lists them.
func (s *Store) Images(ctx context.Context) ([]Entry, error) {
	var recs []*record
	if err := s.view(ctx, func(idx *v1.IndexManifest) error {
		recs = records(idx)
		return nil
	}); err != nil {
		return nil, err
	}
	var out []Entry
	for _, r := range recs {
		base, err := s.entry(r.desc)
		if errors.Is(err, ErrNotFound) {
			continue // e.g. an index with no image for this platform
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", r.desc.Digest, err)
		}
		if len(r.tags) == 0 {
			if len(r.repos) == 0 {
				out = append(out, base)
			}
			for _, repo := range r.repos {
				e := base
				e.RepoDigest = repo.String()
				out = append(out, e)
			}
			continue
		}
		for _, t := range r.tags {
			e := base
			e.Ref = t
			for _, repo := range r.repos {
				if repo.Name() == t.Name() && e.RepoDigest == "" {
					e.RepoDigest = repo.String()
				}
			}
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(entryName(a), entryName(b))
	})
	return out, nil
}

func (s *Store) entry(desc v1.Descriptor) (Entry, error) {
	img, _, err := s.image(desc)
	if err != nil {
		return Entry{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return Entry{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return Entry{}, err
	}
	size, err := ImageSize(img)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Manifest: desc.Digest, ID: id, Created: cfg.Created.Time, Labels: cfg.Config.Labels, Size: size}, nil
}

// ImageSize is the size Entry.Size reports: compressed layers plus config.
func ImageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// RepoTags returns the tags of the image with ID id, and its repository
// digests ("name@sha256:…"), both as full normalised strings.
func (s *Store) RepoTags(ctx context.Context, id v1.Hash) (tags, digests []string, err error) {
	var recs []*record
	if err := s.view(ctx, func(idx *v1.IndexManifest) error {
		recs = records(idx)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	for _, r := range recs {
		rid, err := s.imageID(r.desc)
		if err != nil || rid != id {
			continue
		}
		for _, t := range r.tags {
			tags = append(tags, t.String())
		}
		for _, repo := range r.repos {
			digests = append(digests, repo.String())
		}
	}
	return tags, digests, nil
}

func entryName(e Entry) string {
	if e.Ref != nil {
		return e.Ref.String()
	}
	return e.RepoDigest
}

// PulledThrough returns the digest of a multi-platform index through which
// the stored manifest was pulled, if it was: the registry has more
// platforms than the store, so pushing the manifest pushes one platform.
func (s *Store) PulledThrough(ctx context.Context, manifest v1.Hash) (v1.Hash, bool, error) {
	var out v1.Hash
	var found bool
	err := s.view(ctx, func(idx *v1.IndexManifest) error {
		for _, r := range records(idx) {
			if r.desc.Digest != manifest {
				continue
			}
			for _, repo := range r.repos {
				if repo.Digest().String() == manifest.String() {
					continue
				}
				h, err := v1.NewHash(repo.Digest().String())
				if err != nil {
					continue
				}
				out, found = h, true
				return nil
			}
		}
		return nil
	})
	return out, found, err
}
