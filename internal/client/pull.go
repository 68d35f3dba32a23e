package client

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
)

// PullOptions are `wharf pull`'s flags.
type PullOptions struct {
	Remote
	// Platform ("os/arch[/variant]") picks the image of a multi-platform
	// index; "" means the host's.
	Platform string
	// AllTags pulls every tag of the repository.
	AllTags bool
	// Quiet prints only the pulled reference (docker's -q).
	Quiet bool
}

// Pull downloads an image into the local store and prints docker's output:
// "TAG: Pulling from NAME", one line per layer, "Digest:", "Status:" and
// the full reference.
func Pull(ctx context.Context, st LocalStore, refStr string, opts PullOptions, out io.Writer) error {
	named, err := ref.ParseName(refStr)
	if err != nil {
		return err
	}
	final := out
	if opts.Quiet {
		out = io.Discard
	}
	platform := store.HostPlatform()
	if opts.Platform != "" {
		p, err := v1.ParsePlatform(opts.Platform)
		if err != nil {
			return fmt.Errorf("invalid platform %q: %w", opts.Platform, err)
		}
		platform = *p
	}
	t, err := opts.target(ctx, ref.Domain(named))
	if err != nil {
		return err
	}
	if !opts.AllTags {
		if reference.IsNameOnly(named) {
			fmt.Fprintln(out, "Using default tag: latest")
			named = reference.TagNameOnly(named)
		}
		if err := pullOne(ctx, st, named, platform, opts.Platform != "", t, out); err != nil {
			return err
		}
		fmt.Fprintln(final, named.String())
		return nil
	}

	if err := checkAllTags(named); err != nil {
		return err
	}
	tags, err := remoteTags(named, t)
	if err != nil {
		return err
	}
	for _, tg := range tags {
		tagged, err := withTag(named, tg)
		if err != nil {
			return err
		}
		if err := pullOne(ctx, st, tagged, platform, opts.Platform != "", t, out); err != nil {
			return err
		}
	}
	fmt.Fprintln(final, named.Name())
	return nil
}

// pullOne pulls one tag or digest. explicit says the platform came from
// --platform rather than the host.
func pullOne(ctx context.Context, st LocalStore, named reference.Named, platform v1.Platform, explicit bool, t target, out io.Writer) error {
	what := ref.Familiar(named)
	nr, err := ggcrRef(named, t)
	if err != nil {
		return err
	}
	label := tagOf(named)
	if c, ok := named.(reference.Canonical); ok {
		label = c.Digest().String()
	}
	desc, err := remote.Get(nr, t.opts...)
	if err != nil {
		return explain(err, t.host, what)
	}
	// Like docker, only once the manifest is found.
	fmt.Fprintf(out, "%s: Pulling from %s\n", label, ref.Path(named))
	img, err := resolvePlatform(desc, platform)
	if err != nil {
		return err
	}
	imgDigest, err := img.Digest()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return explain(err, t.host, what)
	}

	rec := store.Pulled{Repo: named}
	if _, ok := named.(reference.Tagged); ok {
		rec.Tag = named
	}
	// Like docker, the repository digest is what the registry served for
	// the name: the index, when the image came through one.
	if desc.MediaType.IsIndex() {
		if rec.Index, err = desc.ImageIndex(); err != nil {
			return err
		}
	}
	_, local, lerr := st.Image(ctx, named.String())
	upToDate := lerr == nil && local == imgDigest
	if upToDate {
		// Nothing to download: the store finds every blob present.
		err = st.WritePulled(ctx, img, rec)
	} else {
		err = download(ctx, st, img, layers, rec, out)
	}
	if err != nil {
		return explain(err, t.host, what)
	}
	var digests []string
	for _, l := range layers {
		if d, err := l.Digest(); err == nil {
			digests = append(digests, d.String())
		}
	}
	_ = newOrigins(st.Root()).record(ref.Domain(named), ref.Path(named), digests)

	fmt.Fprintf(out, "Digest: %s\n", desc.Digest)
	if upToDate {
		fmt.Fprintf(out, "Status: Image is up to date for %s\n", what)
	} else {
		fmt.Fprintf(out, "Status: Downloaded newer image for %s\n", what)
	}
	if explicit && !desc.MediaType.IsIndex() {
		// A single-platform image is pulled whatever its platform, as
		// docker does for compatibility, with docker's warning.
		if cf, err := img.ConfigFile(); err == nil {
			if actual := cf.Platform(); actual != nil && !platformMatches(*actual, platform) {
				fmt.Fprintf(out, "WARNING: image with reference %s was found but does not match the specified platform: wanted %s, actual: %s\n",
					ref.FamiliarName(named), platform.String(), actual.String())
			}
		}
	}
	return nil
}

// platformMatches reports whether an image's platform satisfies the wanted
// one; a variant matters only when wanted.
func platformMatches(have, want v1.Platform) bool {
	return have.OS == want.OS && have.Architecture == want.Architecture &&
		(want.Variant == "" || have.Variant == want.Variant)
}

// download stores img and records the pull (rec), showing each layer as
// docker does. img and its layers come from the registry
// (go-containerregistry's remote package).
func download(ctx context.Context, st LocalStore, img v1.Image, layers []v1.Layer, rec store.Pulled, out io.Writer) error {
	ids := make([]string, len(layers))
	first := make([]string, len(layers))
	wrapped := make([]v1.Layer, len(layers))
	fetch := make([]bool, len(layers))
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		ids[i] = shortHash(d)
		if st.HasBlob(d) {
			first[i] = "Already exists"
		} else {
			first[i] = "Pulling fs layer"
			fetch[i] = true
		}
	}
	disp := newDisplay(out)
	disp.begin(ids, first)
	for i, l := range layers {
		if !fetch[i] {
			disp.done(i, first[i])
			wrapped[i] = l
			continue
		}
		size, _ := l.Size()
		d, _ := l.Digest()
		wrapped[i] = &downloadLayer{Layer: l, disp: disp, i: i, size: size,
			stored: func() bool { return st.HasBlob(d) }}
	}
	err := st.WritePulled(ctx, layeredImage{Image: img, layers: wrapped}, rec)
	for i := range layers {
		if !fetch[i] {
			continue
		}
		if err != nil {
			disp.done(i, "Error") // layers stored before the error printed already
			continue
		}
		disp.done(i, pullComplete, pullCompleteLines...)
	}
	disp.finish()
	return err
}

// pullComplete is a stored layer's final status; in plain output it is
// preceded by "Download complete", as in docker's.
const pullComplete = "Pull complete"

var pullCompleteLines = []string{"Download complete", pullComplete}

// resolvePlatform returns the image a descriptor names; an index resolves
// to the image for platform, as docker does.
func resolvePlatform(desc *remote.Descriptor, p v1.Platform) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		return desc.Image()
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var match *v1.Descriptor
	for i, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		if d.Platform.OS != p.OS || d.Platform.Architecture != p.Architecture {
			continue
		}
		if p.Variant != "" && d.Platform.Variant != p.Variant {
			continue
		}
		match = &im.Manifests[i]
		break
	}
	if match == nil {
		var have []string
		for _, d := range im.Manifests {
			if d.Platform != nil {
				have = append(have, d.Platform.String())
			}
		}
		return nil, fmt.Errorf("no matching manifest for %s in the manifest list entries (the image has %s); choose one with --platform", p.String(), strings.Join(have, ", "))
	}
	return idx.Image(match.Digest)
}

// layeredImage is an image whose layers are replaced by wrappers that
// report download progress.
type layeredImage struct {
	v1.Image
	layers []v1.Layer
}

// Layers implements v1.Image.
func (l layeredImage) Layers() ([]v1.Layer, error) { return l.layers, nil }

// LayerByDigest implements v1.Image.
func (l layeredImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, x := range l.layers {
		if d, err := x.Digest(); err == nil && d == h {
			return x, nil
		}
	}
	return l.Image.LayerByDigest(h)
}

// downloadLayer reports "Downloading" while its bytes are read, and
// "Pull complete" as soon as the store has the blob (the store closes the
// reader after it verified and committed the blob, or failed to).
type downloadLayer struct {
	v1.Layer
	disp   *display
	i      int
	size   int64
	stored func() bool
	once   sync.Once
}

// DigestVerified implements store.VerifiedLayer: download wraps only
// go-containerregistry's remote layers, whose Compressed stream fails at
// EOF unless the blob has the descriptor's size and digest
// (TestPull_CorruptBlobIsNotStored), so the store need not hash it again.
func (d *downloadLayer) DigestVerified() bool { return true }

// Compressed implements v1.Layer.
func (d *downloadLayer) Compressed() (io.ReadCloser, error) {
	rc, err := d.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	d.once.Do(func() { d.disp.set(d.i, "Downloading") })
	return afterClose{ReadCloser: d.disp.transfer(d.i, d.size, rc), fn: func() {
		if d.stored() {
			d.disp.done(d.i, pullComplete, pullCompleteLines...)
		}
	}}, nil
}

// afterClose calls fn once the reader is closed.
type afterClose struct {
	io.ReadCloser
	fn func()
}

func (a afterClose) Close() error {
	err := a.ReadCloser.Close()
	a.fn()
	return err
}
