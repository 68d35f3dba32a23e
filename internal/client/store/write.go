package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/opencontainers/go-digest"
)

// WriteImage stores img's blobs (skipping those present) and manifest, and
// records the image in index.json; it does not tag it.
func (s *Store) WriteImage(ctx context.Context, img v1.Image) error {
	if err := s.commitBlobs(false, func(b *batch) error { return s.writeImageBlobs(ctx, b, img) }); err != nil {
		return err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	return s.update(ctx, func(idx *v1.IndexManifest) error {
		// A concurrent Remove may have deleted a shared blob between our
		// write and taking the lock; write again what is missing.
		if err := s.commitBlobs(false, func(b *batch) error { return s.writeImageBlobs(ctx, b, img) }); err != nil {
			return err
		}
		addRecord(idx, *desc)
		return nil
	})
}

// WriteIndex stores an index and every child image and index (for
// multi-platform pulls and loads) and records the index in index.json.
func (s *Store) WriteIndex(ctx context.Context, ii v1.ImageIndex) error {
	if err := s.commitBlobs(false, func(b *batch) error { return s.writeIndexBlobs(ctx, b, ii) }); err != nil {
		return err
	}
	desc, err := partial.Descriptor(ii)
	if err != nil {
		return err
	}
	return s.update(ctx, func(idx *v1.IndexManifest) error {
		if err := s.commitBlobs(false, func(b *batch) error { return s.writeIndexBlobs(ctx, b, ii) }); err != nil {
			return err
		}
		addRecord(idx, *desc)
		return nil
	})
}

// Pulled is what a pull records about the image it stored.
type Pulled struct {
	// Tag is the tag pulled (a normalised reference); nil for a pull by
	// digest.
	Tag reference.Named
	// Repo is the repository the image came from (a normalised name).
	Repo reference.Named
	// Index is the multi-platform index the image was pulled through, or
	// nil: docker reports its digest as the repository digest.
	Index v1.ImageIndex
}

// WritePulled stores img as WriteImage does, then tags it and records its
// repository digest (as Tag and SetRepoDigest would; the index's digest
// when the image came through one) in the same write of index.json: each
// write is an fsync and a rename on the pull's critical path, so a pull
// makes one, not three.
func (s *Store) WritePulled(ctx context.Context, img v1.Image, p Pulled) error {
	if p.Tag != nil {
		if err := checkTag(p.Tag); err != nil {
			return err
		}
	}
	if err := s.commitBlobs(true, func(b *batch) error { return s.writeImageBlobs(ctx, b, img) }); err != nil {
		return err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	repoDigest := desc.Digest
	if p.Index != nil {
		if repoDigest, err = p.Index.Digest(); err != nil {
			return err
		}
	}
	return s.update(ctx, func(idx *v1.IndexManifest) error {
		// Under the lock, as in WriteImage; the index too, so that a
		// concurrent Remove cannot drop it before it is referred to.
		if err := s.commitBlobs(true, func(b *batch) error {
			if err := s.writeImageBlobs(ctx, b, img); err != nil {
				return err
			}
			if p.Index != nil {
				return s.writeManifestBlob(b, p.Index)
			}
			return nil
		}); err != nil {
			return err
		}
		addRecord(idx, *desc)
		if p.Tag != nil {
			if err := tagIn(idx, p.Tag, desc.Digest); err != nil {
				return err
			}
		}
		return addRepoRefTo(idx, p.Repo, desc.Digest, repoDigest)
	})
}

// addRecord adds an untagged image record for desc unless one exists.
func addRecord(idx *v1.IndexManifest, desc v1.Descriptor) {
	for _, d := range idx.Manifests {
		if d.Digest == desc.Digest && refName(d) == "" {
			return
		}
	}
	idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest})
}

// Tag points ref (a normalised reference with a tag) at the stored manifest
// digest, moving the tag if it pointed elsewhere.
func (s *Store) Tag(ctx context.Context, ref reference.Named, manifest v1.Hash) error {
	if err := checkTag(ref); err != nil {
		return err
	}
	return s.update(ctx, func(idx *v1.IndexManifest) error { return tagIn(idx, ref, manifest) })
}

// checkTag refuses a reference that cannot be a tag.
func checkTag(ref reference.Named) error {
	if _, ok := ref.(reference.NamedTagged); !ok {
		return fmt.Errorf("cannot tag %s: reference has no tag", reference.FamiliarString(ref))
	}
	if _, ok := ref.(reference.Canonical); ok {
		return fmt.Errorf("refusing to create a tag with a digest reference: %s", reference.FamiliarString(ref))
	}
	return nil
}

// tagIn points the tag ref at the image record of manifest in idx.
func tagIn(idx *v1.IndexManifest, ref reference.Named, manifest v1.Hash) error {
	name := ref.String()
	var rec *v1.Descriptor
	for i, d := range idx.Manifests {
		if d.Digest == manifest && refName(d) == "" {
			rec = &idx.Manifests[i]
		}
	}
	if rec == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, manifest)
	}
	tag := v1.Descriptor{MediaType: rec.MediaType, Size: rec.Size, Digest: rec.Digest,
		Annotations: map[string]string{AnnotationRefName: name}}
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return refName(d) == name })
	idx.Manifests = append(idx.Manifests, tag)
	return nil
}

// Untag removes the tag ref; the image stays (dangling if it was its last tag).
func (s *Store) Untag(ctx context.Context, ref reference.Named) error {
	name := ref.String()
	return s.update(ctx, func(idx *v1.IndexManifest) error {
		n := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return refName(d) == name })
		if len(idx.Manifests) == n {
			return fmt.Errorf("%w: %s", ErrNotFound, reference.FamiliarString(ref))
		}
		return nil
	})
}

// SetRepoDigest records that repo (a normalised name; tag and digest are
// ignored) holds manifest digest d at its registry, after a push or pull.
// It feeds `image ls --digests` and RepoDigests.
func (s *Store) SetRepoDigest(ctx context.Context, repo reference.Named, d v1.Hash) error {
	return s.addRepoRef(ctx, repo, d, d)
}

func (s *Store) addRepoRef(ctx context.Context, repo reference.Named, record, d v1.Hash) error {
	return s.update(ctx, func(ix *v1.IndexManifest) error { return addRepoRefTo(ix, repo, record, d) })
}

// addRepoRefTo adds repo@d to the repository digests of the record with
// manifest digest record.
func addRepoRefTo(idx *v1.IndexManifest, repo reference.Named, record, d v1.Hash) error {
	c, err := reference.WithDigest(reference.TrimNamed(repo), digest.Digest(d.String()))
	if err != nil {
		return err
	}
	for i, desc := range idx.Manifests {
		if desc.Digest != record || refName(desc) != "" {
			continue
		}
		setRepoRefs(&idx.Manifests[i], append(repoRefs(desc), c))
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotFound, record)
}
