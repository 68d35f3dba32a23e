// Package importer moves images into wharf from another registry's
// storage, read in place, through the registry service: every blob and
// manifest goes in by the same code path as a push, so the same rules
// (digest checks, manifest validation, references) hold for it.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry"
)

// Registry is what an import needs of the registry service
// (*registry.Service implements it).
type Registry interface {
	StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	MountBlob(ctx context.Context, repo string, d digest.Digest, from string) (bool, error)
	PutBlob(ctx context.Context, repo string, d digest.Digest, r io.Reader, length int64) (int64, error)
	GetManifest(ctx context.Context, repo, ref string) (*metadata.Manifest, error)
	PutManifest(ctx context.Context, repo, ref, contentType string, body []byte, extraTags []string) (*registry.PutManifestResult, error)
	TagTarget(ctx context.Context, repo, tag string) (digest.Digest, error)
	Tags(ctx context.Context, repo, last string, n int) ([]string, error)
	DeleteManifest(ctx context.Context, repo, ref string) error
	MaxManifestSize() int64
}

var _ Registry = (*registry.Service)(nil)

// Options tune an import.
type Options struct {
	// DryRun reads and verifies the source and compares it with wharf,
	// writing nothing.
	DryRun bool
	// PruneTags deletes tags wharf has in an imported repository that the
	// source no longer has. Without it they are only reported.
	PruneTags bool
	// Progress receives one line per repository and per problem; nil is
	// silent.
	Progress io.Writer
}

// Report counts what an import did (or, in a dry run, would do).
type Report struct {
	Repositories      int
	BlobsImported     int
	BlobsSkipped      int   // already in wharf: linked by digest, bytes not read
	Bytes             int64 // bytes of the blobs imported
	ManifestsImported int
	ManifestsSkipped  int // already in wharf
	TagsSet           int // created or moved to the source's target
	TagsUnchanged     int
	// TagsVanished lists repo:tag for tags wharf has that the source no
	// longer has; TagsPruned says how many of them were deleted.
	TagsVanished []string
	TagsPruned   int
	Problems     []Problem
}

// Problem is something in the source that could not be imported.
type Problem struct {
	Repo   string
	Digest digest.Digest // the blob or manifest, if any
	Tag    string        // the tag, if any
	Err    error
}

func (p Problem) String() string {
	s := p.Repo
	if p.Tag != "" {
		s += ":" + p.Tag
	}
	if p.Digest != "" {
		s += "@" + p.Digest.String()
	}
	return s + ": " + p.Err.Error()
}

// Source problems the importer finds itself; the registry's own
// (registry.ErrDigestInvalid, registry.ErrManifestBlobUnknown, …) are
// reported as they come.
var (
	// ErrIncomplete is returned when some of the source was not imported;
	// the report lists why.
	ErrIncomplete = errors.New("import incomplete")
	// ErrSourceMissing is a link to bytes the source does not have.
	ErrSourceMissing = errors.New("missing from the source's blob store")
)

// Import copies every repository of src into reg: blobs, then manifests
// in an order the registry accepts (an index after its children, a
// referrer after its subject), then tags. Run it again to pick up what
// changed since: whatever wharf already holds is skipped by digest.
// Problems with the source are collected in the report and make the
// result ErrIncomplete; a failing store ends the import at once.
func Import(ctx context.Context, reg Registry, src *Source, opts Options) (Report, error) {
	im := &importer{reg: reg, src: src, opts: opts, bad: map[digest.Digest]error{}}
	repos, err := src.Repositories()
	if err != nil {
		return im.rep, err
	}
	for i, repo := range repos {
		if err := ctx.Err(); err != nil {
			return im.rep, err
		}
		before := im.rep
		if err := im.repo(ctx, repo); err != nil {
			return im.rep, fmt.Errorf("%s: %w", repo, err)
		}
		im.rep.Repositories++
		im.progressRepo(i+1, len(repos), repo, before)
	}
	if len(im.rep.Problems) > 0 {
		return im.rep, fmt.Errorf("%w: %d problems", ErrIncomplete, len(im.rep.Problems))
	}
	return im.rep, nil
}

// bigBlob is the size from which a blob gets its own progress line: a
// large layer takes long enough that silence would look like a hang.
const bigBlob = 64 << 20

type importer struct {
	reg  Registry
	src  *Source
	opts Options
	rep  Report
	// bad remembers blobs found corrupt or missing, so that a blob linked
	// into many repositories is read once.
	bad map[digest.Digest]error
}

// repo imports one repository. Its error is a store failure; problems
// with the source go into the report.
func (im *importer) repo(ctx context.Context, repo string) error {
	if err := registry.ValidateName(repo); err != nil {
		im.problem(Problem{Repo: repo, Err: err})
		return nil
	}
	layers, bad, err := im.src.Layers(repo)
	if err != nil {
		im.problem(Problem{Repo: repo, Err: err})
		return nil
	}
	for _, err := range bad {
		im.problem(Problem{Repo: repo, Err: err})
	}
	for _, d := range layers {
		if err := im.blob(ctx, repo, d); err != nil {
			return err
		}
	}
	revisions, bad, err := im.src.Revisions(repo)
	if err != nil {
		im.problem(Problem{Repo: repo, Err: err})
		return nil
	}
	for _, err := range bad {
		im.problem(Problem{Repo: repo, Err: err})
	}
	present, err := im.manifests(ctx, repo, revisions)
	if err != nil {
		return err
	}
	return im.tags(ctx, repo, present)
}

// blob brings d into repo: linked if wharf holds the bytes already,
// streamed from the source otherwise.
func (im *importer) blob(ctx context.Context, repo string, d digest.Digest) error {
	if _, err := im.reg.StatBlob(ctx, repo, d); err == nil {
		im.rep.BlobsSkipped++
		return nil
	} else if !errors.Is(err, registry.ErrBlobUnknown) {
		return err
	}
	if err, ok := im.bad[d]; ok {
		im.problem(Problem{Repo: repo, Digest: d, Err: err})
		return nil
	}
	if !im.opts.DryRun {
		mounted, err := im.reg.MountBlob(ctx, repo, d, "")
		if err != nil {
			return err
		}
		if mounted {
			im.rep.BlobsSkipped++
			return nil
		}
	}
	f, err := os.Open(im.src.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return im.badBlob(repo, d, ErrSourceMissing)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() >= bigBlob && im.opts.Progress != nil {
		fmt.Fprintf(im.opts.Progress, "%s: reading blob %s (%s)\n", repo, d, MB(st.Size()))
	}
	var n int64
	if im.opts.DryRun {
		n, err = verify(d, f)
	} else {
		n, err = im.reg.PutBlob(ctx, repo, d, f, st.Size())
	}
	if errors.Is(err, registry.ErrDigestInvalid) {
		return im.badBlob(repo, d, fmt.Errorf("corrupt in the source, not imported: %w", err))
	}
	var re *registry.Error
	if errors.As(err, &re) {
		return im.badBlob(repo, d, fmt.Errorf("not imported: %w", err))
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	im.rep.BlobsImported++
	im.rep.Bytes += n
	return nil
}

func (im *importer) badBlob(repo string, d digest.Digest, err error) error {
	im.bad[d] = err
	im.problem(Problem{Repo: repo, Digest: d, Err: err})
	return nil
}

// verify hashes r as the registry would, for a dry run.
func verify(d digest.Digest, r io.Reader) (int64, error) {
	if !d.Algorithm().Available() {
		return 0, registry.Errorf(registry.ErrDigestInvalid, "unsupported digest algorithm %s", d.Algorithm())
	}
	v := d.Verifier()
	n, err := io.Copy(v, r)
	if err != nil {
		return n, err
	}
	if !v.Verified() {
		return n, registry.Errorf(registry.ErrDigestInvalid, "content does not match its digest")
	}
	return n, nil
}

func (im *importer) problem(p Problem) {
	im.rep.Problems = append(im.rep.Problems, p)
	if im.opts.Progress != nil {
		fmt.Fprintf(im.opts.Progress, "problem: %s\n", p)
	}
}

func (im *importer) progressRepo(i, n int, repo string, before Report) {
	if im.opts.Progress == nil {
		return
	}
	r := im.rep
	parts := []string{
		fmt.Sprintf("blobs %d imported (%s), %d already present", r.BlobsImported-before.BlobsImported, MB(r.Bytes-before.Bytes), r.BlobsSkipped-before.BlobsSkipped),
		fmt.Sprintf("manifests %d imported, %d already present", r.ManifestsImported-before.ManifestsImported, r.ManifestsSkipped-before.ManifestsSkipped),
		fmt.Sprintf("tags %d set, %d unchanged", r.TagsSet-before.TagsSet, r.TagsUnchanged-before.TagsUnchanged),
	}
	if v := len(r.TagsVanished) - len(before.TagsVanished); v > 0 {
		parts = append(parts, fmt.Sprintf("%d vanished (%d pruned)", v, r.TagsPruned-before.TagsPruned))
	}
	if p := len(r.Problems) - len(before.Problems); p > 0 {
		parts = append(parts, fmt.Sprintf("%d problems", p))
	}
	fmt.Fprintf(im.opts.Progress, "[%d/%d] %s: %s\n", i, n, repo, strings.Join(parts, "; "))
}

// MB formats a byte count for people.
func MB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// tags points each tag of the source at its target in wharf, and reports
// (or prunes) the tags wharf has that the source does not.
func (im *importer) tags(ctx context.Context, repo string, present map[digest.Digest]bool) error {
	tags, bad, err := im.src.Tags(repo)
	if err != nil {
		im.problem(Problem{Repo: repo, Err: err})
		return nil
	}
	for _, err := range bad {
		im.problem(Problem{Repo: repo, Err: err})
	}
	names := make([]string, 0, len(tags))
	for t := range tags {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, tag := range names {
		d := tags[tag]
		if d == "" {
			continue // unreadable, reported above
		}
		cur, err := im.reg.TagTarget(ctx, repo, tag)
		switch {
		case err == nil && cur == d:
			im.rep.TagsUnchanged++
			continue
		case err != nil && !errors.Is(err, registry.ErrManifestUnknown) && !errors.Is(err, registry.ErrNameUnknown):
			var re *registry.Error
			if errors.As(err, &re) { // an invalid tag name
				im.problem(Problem{Repo: repo, Tag: tag, Err: err})
				continue
			}
			return err
		}
		if !present[d] {
			im.problem(Problem{Repo: repo, Tag: tag, Digest: d, Err: errors.New("tag not moved: its manifest was not imported")})
			continue
		}
		if !im.opts.DryRun {
			m, err := im.reg.GetManifest(ctx, repo, d.String())
			if err != nil {
				return err
			}
			if _, err := im.reg.PutManifest(ctx, repo, tag, m.MediaType, m.Content, nil); err != nil {
				return fmt.Errorf("tag %s: %w", tag, err)
			}
		}
		im.rep.TagsSet++
	}
	return im.vanished(ctx, repo, tags)
}

// vanished handles tags wharf has in repo that the source does not.
func (im *importer) vanished(ctx context.Context, repo string, source map[string]digest.Digest) error {
	const page = 1000
	var gone []string
	last := ""
	for {
		tags, err := im.reg.Tags(ctx, repo, last, page)
		if errors.Is(err, registry.ErrNameUnknown) {
			break // a dry run's new repository
		}
		if err != nil {
			return err
		}
		for _, t := range tags {
			if _, ok := source[t]; !ok {
				gone = append(gone, t)
			}
		}
		if len(tags) < page {
			break
		}
		last = tags[len(tags)-1]
	}
	for _, t := range gone {
		im.rep.TagsVanished = append(im.rep.TagsVanished, repo+":"+t)
		if !im.opts.PruneTags {
			continue
		}
		if !im.opts.DryRun {
			if err := im.reg.DeleteManifest(ctx, repo, t); err != nil && !errors.Is(err, registry.ErrManifestUnknown) {
				return fmt.Errorf("prune tag %s: %w", t, err)
			}
		}
		im.rep.TagsPruned++
	}
	return nil
}
