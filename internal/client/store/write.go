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
	if err := s.commitBlobs(func(b *batch) error { return s.writeImageBlobs(ctx, b, img) }); err != nil {
		return err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	return s.update(ctx, func(idx *v1.IndexManifest) error {
		// A concurrent Remove may have deleted a shared blob between our
		// write and taking the lock; write again what is missing.
		if err := s.commitBlobs(func(b *batch) error { return s.writeImageBlobs(ctx, b, img) }); err != nil {
			return err
		}
		addRecord(idx, *desc)
		return nil
	})
}

// WriteIndex stores an index and every child image and index (for
// multi-platform pulls and loads) and records the index in index.json.
func (s *Store) WriteIndex(ctx context.Context, ii v1.ImageIndex) error {
	if err := s.commitBlobs(func(b *batch) error { return s.writeIndexBlobs(ctx, b, ii) }); err != nil {
		return err
	}
	desc, err := partial.Descriptor(ii)
	if err != nil {
		return err
	}
	return s.update(ctx, func(idx *v1.IndexManifest) error {
		if err := s.commitBlobs(func(b *batch) error { return s.writeIndexBlobs(ctx, b, ii) }); err != nil {
			return err
		}
		addRecord(idx, *desc)
		return nil
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
	tagged, ok := ref.(reference.NamedTagged)
	if !ok {
		return fmt.Errorf("cannot tag %s: reference has no tag", reference.FamiliarString(ref))
	}
	if _, ok := ref.(reference.Canonical); ok {
		return fmt.Errorf("refusing to create a tag with a digest reference: %s", reference.FamiliarString(ref))
	}
	name := tagged.String()
	return s.update(ctx, func(idx *v1.IndexManifest) error {
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
	})
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

// SetRepoIndex records that repo holds the multi-platform index idx, through
// which the stored image with manifest digest image was pulled: docker
// reports the index's digest as the repository digest, and so does wharf.
// The index manifest itself is kept in the layout, not its other platforms.
func (s *Store) SetRepoIndex(ctx context.Context, repo reference.Named, image v1.Hash, idx v1.ImageIndex) error {
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	return s.update(ctx, func(ix *v1.IndexManifest) error {
		// Under the lock, so that a concurrent Remove cannot drop the blob
		// between writing it and recording the reference to it.
		if err := s.commitBlobs(func(b *batch) error { return s.writeManifestBlob(b, idx) }); err != nil {
			return err
		}
		return addRepoRefTo(ix, repo, image, d)
	})
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
