package client

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/template"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/client/ref"
)

// CopyOptions are `wharf cp`'s flags.
type CopyOptions struct {
	Remote
	// AllTags copies every tag of the source repository.
	AllTags bool
}

// Copy copies an image or a whole multi-platform index from one registry
// repository to another, byte for byte (the digests stay the same). Blobs
// the destination has are not sent; within one registry they are mounted.
func Copy(ctx context.Context, src, dst string, opts CopyOptions, out io.Writer) error {
	srcNamed, err := ref.ParseName(src)
	if err != nil {
		return err
	}
	dstNamed, err := ref.ParseName(dst)
	if err != nil {
		return err
	}
	st, err := opts.target(ctx, ref.Domain(srcNamed))
	if err != nil {
		return err
	}
	dt, err := opts.target(ctx, ref.Domain(dstNamed))
	if err != nil {
		return err
	}
	if !opts.AllTags {
		if _, ok := srcNamed.(reference.Canonical); !ok {
			srcNamed = reference.TagNameOnly(srcNamed)
		}
		if _, ok := dstNamed.(reference.Canonical); !ok {
			if _, ok := dstNamed.(reference.Tagged); !ok {
				// Like crane: the destination keeps the source's tag.
				if tg := tagOf(srcNamed); tg != "" {
					if dstNamed, err = withTag(dstNamed, tg); err != nil {
						return err
					}
				} else {
					dstNamed = reference.TagNameOnly(dstNamed)
				}
			}
		}
		return copyOne(ctx, srcNamed, dstNamed, st, dt, out)
	}
	for _, n := range []reference.Named{srcNamed, dstNamed} {
		if err := checkAllTags(n); err != nil {
			return err
		}
	}
	tags, err := remoteTags(srcNamed, st)
	if err != nil {
		return err
	}
	for _, tg := range tags {
		s, err := withTag(srcNamed, tg)
		if err != nil {
			return err
		}
		d, err := withTag(dstNamed, tg)
		if err != nil {
			return err
		}
		if err := copyOne(ctx, s, d, st, dt, out); err != nil {
			return err
		}
	}
	return nil
}

func copyOne(ctx context.Context, src, dst reference.Named, st, dt target, out io.Writer) error {
	sr, err := ggcrRef(src, st)
	if err != nil {
		return err
	}
	dr, err := ggcrRef(dst, dt)
	if err != nil {
		return err
	}
	desc, err := remote.Get(sr, st.opts...)
	if err != nil {
		return explain(err, st.host, ref.Familiar(src))
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return explain(err, st.host, ref.Familiar(src))
		}
		err = remote.WriteIndex(dr, idx, dt.opts...)
		if err != nil {
			return explain(err, dt.host, ref.Familiar(dst))
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return explain(err, st.host, ref.Familiar(src))
		}
		if err := remote.Write(dr, img, dt.opts...); err != nil {
			return explain(err, dt.host, ref.Familiar(dst))
		}
	}
	fmt.Fprintf(out, "Copied %s to %s\n", ref.Familiar(src), ref.Familiar(dst))
	label := tagOf(dst)
	if label == "" {
		label = "digest"
	}
	fmt.Fprintf(out, "%s: digest: %s size: %d\n", label, desc.Digest, desc.Size)
	return nil
}

// RepoListOptions are `wharf repo ls`'s flags.
type RepoListOptions struct {
	Remote
}

// RepoList prints the repositories of a registry (its catalog), one a line.
func RepoList(ctx context.Context, registry string, opts RepoListOptions, out io.Writer) error {
	host := registryHost(registry)
	t, err := opts.target(ctx, apiHost(host))
	if err != nil {
		return err
	}
	reg, err := name.NewRegistry(apiHost(host), t.nameOpts()...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %w", registry, err)
	}
	repos, err := remote.Catalog(ctx, reg, t.opts...)
	if err != nil {
		return explain(err, host, host)
	}
	for _, r := range repos {
		fmt.Fprintln(out, r)
	}
	return nil
}

// RepoTagsOptions are `wharf repo tags`'s flags.
type RepoTagsOptions struct {
	Remote
	// Format is a Go template over {{.Repository}} (familiar name),
	// {{.Tag}} and {{.Reference}} (familiar name:tag); "" prints the tag.
	Format string
}

// tagRow is what --format sees for one tag.
type tagRow struct {
	Repository string
	Tag        string
	Reference  string
}

// RepoTags prints a repository's tags, one a line.
func RepoTags(ctx context.Context, repoStr string, opts RepoTagsOptions, out io.Writer) error {
	named, err := ref.ParseName(repoStr)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Tagged); ok {
		return fmt.Errorf("%q names a tag; give the repository only", repoStr)
	}
	t, err := opts.target(ctx, ref.Domain(named))
	if err != nil {
		return err
	}
	repo, err := ggcrRepo(named, t)
	if err != nil {
		return err
	}
	tags, err := remote.List(repo, t.opts...)
	if err != nil {
		return explain(err, t.host, ref.FamiliarName(named))
	}
	format := opts.Format
	if format == "" {
		format = "{{.Tag}}"
	}
	tmpl, err := template.New("format").Parse(strings.ReplaceAll(format, `\t`, "\t"))
	if err != nil {
		return fmt.Errorf("invalid --format: %w", err)
	}
	for _, tg := range tags {
		fam := ref.FamiliarName(named)
		if err := tmpl.Execute(out, tagRow{Repository: fam, Tag: tg, Reference: fam + ":" + tg}); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	return nil
}

// RepoRemoveOptions are `wharf repo rm`'s flags.
type RepoRemoveOptions struct {
	Remote
}

// RepoRemove deletes a tag (REPO:TAG) or a manifest (REPO@sha256:…) at
// the registry. A bare repository name is refused rather than read as
// :latest, since deleting is not undoable.
func RepoRemove(ctx context.Context, refStr string, opts RepoRemoveOptions, out io.Writer) error {
	named, err := ref.ParseName(refStr)
	if err != nil {
		return err
	}
	_, tagged := named.(reference.Tagged)
	_, canonical := named.(reference.Canonical)
	if !tagged && !canonical {
		return fmt.Errorf("%q names no tag or digest; say which one to delete (REPO:TAG or REPO@sha256:…)", refStr)
	}
	t, err := opts.target(ctx, ref.Domain(named))
	if err != nil {
		return err
	}
	nr, err := ggcrRef(named, t)
	if err != nil {
		return err
	}
	if err := remote.Delete(nr, t.opts...); err != nil {
		return explain(err, t.host, ref.Familiar(named))
	}
	if canonical {
		fmt.Fprintf(out, "Deleted: %s\n", nr.Identifier())
	} else {
		fmt.Fprintf(out, "Untagged: %s\n", ref.Familiar(named))
	}
	return nil
}
