package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/client/build"
	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
)

// RebaseOptions are `wharf image rebase`'s flags.
type RebaseOptions struct {
	Remote
	// Onto is the new base image (--onto).
	Onto string
	// OldBase is the base the image was built on (--old-base); "" means
	// the one its org.opencontainers.image.base.* annotations name.
	OldBase string
	// Tag names the result (-t); "" moves the image's own tag.
	Tag string
	// InRegistry rebases in the registry even when the local store has
	// the image.
	InRegistry bool
}

// ErrNoBaseAnnotation is returned when --old-base is omitted and the
// image does not name its base.
var ErrNoBaseAnnotation = errors.New("no base annotation")

// ImageRebase moves an image onto a new base without a daemon, keeping
// its own layers. An image in the local store is rebased there (bases
// from the store, else their registry); otherwise registry to registry,
// where layers within one registry are mounted, not copied.
func ImageRebase(ctx context.Context, st *store.Store, refStr string, opts RebaseOptions, out io.Writer) error {
	if opts.Onto == "" {
		return errors.New("--onto NEWBASE is required")
	}
	named, err := ref.ParseName(refStr)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Canonical); !ok {
		named = reference.TagNameOnly(named)
	}
	dest := named
	if opts.Tag != "" {
		if dest, err = ref.Parse(opts.Tag); err != nil {
			return err
		}
		dest = reference.TagNameOnly(dest)
	}
	if _, ok := dest.(reference.NamedTagged); !ok {
		return fmt.Errorf("rebasing %s by digest: name the result with -t NAME:TAG", ref.Familiar(named))
	}
	r := baseResolver{st: st, remote: opts.Remote}
	if opts.InRegistry {
		r.st = nil
	}
	var orig v1.Image
	local := false
	if r.st != nil {
		img, _, err := st.Image(ctx, named.String())
		switch {
		case err == nil:
			orig, local = img, true
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	if !local {
		r.st = nil // registry to registry: the bases come from registries too
		if orig, err = r.single(ctx, named); err != nil {
			return err
		}
	}
	cf, err := orig.ConfigFile()
	if err != nil {
		return err
	}
	platform := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	oldRef := opts.OldBase
	if oldRef == "" {
		if oldRef, err = annotatedBase(orig, named); err != nil {
			return err
		}
	}
	oldBase, _, err := r.Resolve(ctx, oldRef, platform)
	if err != nil {
		return fmt.Errorf("old base %s: %w", oldRef, err)
	}
	newBase, newName, err := r.Resolve(ctx, opts.Onto, platform)
	if err != nil {
		return fmt.Errorf("new base %s: %w", opts.Onto, err)
	}
	rebased, err := build.Rebase(orig, oldBase, newBase, newName)
	if err != nil {
		return fmt.Errorf("cannot rebase %s: %w", ref.Familiar(named), err)
	}
	d, err := rebased.Digest()
	if err != nil {
		return err
	}
	raw, err := rebased.RawManifest()
	if err != nil {
		return err
	}
	if local {
		if err := st.WriteImage(ctx, rebased); err != nil {
			return err
		}
		if err := st.Tag(ctx, dest, d); err != nil {
			return err
		}
	} else if err := r.write(ctx, dest, rebased); err != nil {
		return err
	}
	fmt.Fprintf(out, "Rebased %s onto %s\n", ref.Familiar(named), opts.Onto)
	fmt.Fprintf(out, "%s: digest: %s size: %d\n", tagOf(dest), d, len(raw))
	return nil
}

// annotatedBase is name@digest from the image's base annotations.
func annotatedBase(img v1.Image, named reference.Named) (string, error) {
	m, err := img.Manifest()
	if err != nil {
		return "", err
	}
	name, dg := m.Annotations[build.AnnotationBaseName], m.Annotations[build.AnnotationBaseDigest]
	if name == "" || dg == "" {
		return "", fmt.Errorf("%w: %s has no %s/%s annotations; name the base it was built on with --old-base", ErrNoBaseAnnotation, ref.Familiar(named), build.AnnotationBaseName, build.AnnotationBaseDigest)
	}
	n, err := ref.ParseName(name)
	if err != nil {
		return "", fmt.Errorf("%s annotation %q: %w", build.AnnotationBaseName, name, err)
	}
	c, err := reference.WithDigest(reference.TrimNamed(n), digest.Digest(dg))
	if err != nil {
		return "", fmt.Errorf("%s annotation %q: %w", build.AnnotationBaseDigest, dg, err)
	}
	return c.String(), nil
}

// single fetches an image (not an index) from its registry.
func (r baseResolver) single(ctx context.Context, named reference.Named) (v1.Image, error) {
	desc, err := r.get(ctx, named)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is a multi-platform index: rebase the image of one platform (NAME@DIGEST) instead", ref.Familiar(named))
	}
	return desc.Image()
}

// write pushes img to dest. Layers that come from repositories of the same
// registry are mounted (go-containerregistry mounts remote layers), so a
// rebase there moves no layer bytes.
func (r baseResolver) write(ctx context.Context, dest reference.Named, img v1.Image) error {
	t, err := r.remote.target(ctx, ref.Domain(dest))
	if err != nil {
		return err
	}
	nr, err := ggcrRef(dest, t)
	if err != nil {
		return err
	}
	if err := remote.Write(nr, img, t.opts...); err != nil {
		return explain(err, t.host, ref.Familiar(dest))
	}
	return nil
}
