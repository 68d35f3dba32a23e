package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
	"github.com/wharf/wharf/internal/semver"
)

// LocalStore is what push and pull need of the local image store
// (*store.Store).
type LocalStore interface {
	Root() string
	Image(ctx context.Context, ref string) (v1.Image, v1.Hash, error)
	Resolve(ctx context.Context, ref string) (v1.Descriptor, error)
	ImageIndex(ctx context.Context, h v1.Hash) (v1.ImageIndex, error)
	Images(ctx context.Context) ([]store.Entry, error)
	WriteImage(ctx context.Context, img v1.Image) error
	WritePulled(ctx context.Context, img v1.Image, p store.Pulled) error
	Tag(ctx context.Context, ref reference.Named, manifest v1.Hash) error
	HasBlob(h v1.Hash) bool
	SetRepoDigest(ctx context.Context, repo reference.Named, d v1.Hash) error
	PulledThrough(ctx context.Context, manifest v1.Hash) (v1.Hash, bool, error)
}

var _ LocalStore = (*store.Store)(nil)

// PushOptions are `wharf push`'s flags.
type PushOptions struct {
	Remote
	// AllTags pushes every local tag of the repository.
	AllTags bool
	// Semver reads the pushed tag as a version (2.1.106) and also pushes
	// the floating tags (2.1, 2, latest) of which it is the highest
	// stable version in the registry's tags, as wharf's floating-tags=
	// semver policy would move them (internal/semver's rules), so that
	// any registry gets them right.
	Semver bool
	// Quiet prints only the pushed reference (docker's -q).
	Quiet bool
	// Notes receives docker's "Info ->" notes, which docker writes to
	// stderr; nil discards them.
	Notes io.Writer
}

// Push uploads a local image to its registry and prints docker's output:
// the repository, one line per layer, and "TAG: digest: … size: N".
func Push(ctx context.Context, st LocalStore, refStr string, opts PushOptions, out io.Writer) error {
	named, err := ref.ParseName(refStr)
	if err != nil {
		return err
	}
	if opts.Quiet {
		err := push(ctx, st, named, refStr, opts, io.Discard)
		if err == nil && !opts.AllTags {
			fmt.Fprintln(out, reference.TagNameOnly(named).String())
		} else if err == nil {
			fmt.Fprintln(out, named.String())
		}
		return err
	}
	return push(ctx, st, named, refStr, opts, out)
}

// push is Push writing its progress to out.
func push(ctx context.Context, st LocalStore, named reference.Named, refStr string, opts PushOptions, out io.Writer) error {
	var tags []reference.Named
	if opts.AllTags && opts.Semver {
		return checkSemver(named, opts)
	}
	if opts.AllTags {
		if _, ok := named.(reference.Tagged); ok {
			return fmt.Errorf("tag can't be used with --all-tags/-a")
		}
		entries, err := st.Images(ctx)
		if err != nil {
			return err
		}
		var names []string
		for _, e := range entries {
			if e.Ref != nil && e.Ref.Name() == named.Name() {
				names = append(names, tagOf(e.Ref))
			}
		}
		for _, tg := range sortedTags(names) {
			t, err := withTag(named, tg)
			if err != nil {
				return err
			}
			tags = append(tags, t)
		}
		if len(tags) == 0 {
			return notLocalError{name: ref.FamiliarName(named)}
		}
	} else {
		if _, ok := named.(reference.Canonical); ok {
			return fmt.Errorf("cannot push a digest reference: %s", refStr)
		}
		if opts.Semver {
			if err := checkSemver(named, opts); err != nil {
				return err
			}
		}
		if reference.IsNameOnly(named) {
			fmt.Fprintln(out, "Using default tag: latest")
		}
		tags = []reference.Named{reference.TagNameOnly(named)}
	}

	// Like docker, say nothing about the registry when the image is not here.
	for _, tag := range tags {
		if _, err := st.Resolve(ctx, tag.String()); errors.Is(err, store.ErrNotFound) {
			return notLocalError{name: ref.FamiliarName(tag)}
		}
	}
	t, err := opts.target(ctx, ref.Domain(named))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "The push refers to repository [%s]\n", named.Name())
	for _, tag := range tags {
		if err := pushTag(ctx, st, tag, t, opts, out); err != nil {
			return err
		}
	}
	if opts.Semver {
		return pushFloating(ctx, st, tags[0], t, opts, out)
	}
	return nil
}

// checkSemver refuses --semver with what it cannot apply to.
func checkSemver(named reference.Named, opts PushOptions) error {
	if opts.AllTags {
		return errors.New("--semver pushes one version: it can't be used with --all-tags/-a")
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return errors.New("--semver needs the version as the tag: NAME:2.1.106")
	}
	if _, ok := semver.Parse(tagged.Tag()); !ok {
		return fmt.Errorf("--semver: tag %q is not a version (MAJOR.MINOR.PATCH, optionally v-prefixed, -pre-release, _build)", tagged.Tag())
	}
	return nil
}

// pushFloating tags the pushed version locally with each floating tag
// the rules move, as `docker image tag` would, and pushes it under each,
// printing docker's lines. The registry's tags are read after the version
// was pushed: the version is then among them.
func pushFloating(ctx context.Context, st LocalStore, version reference.Named, t target, opts PushOptions, out io.Writer) error {
	have, err := remoteTags(version, t)
	if err != nil {
		return err
	}
	desc, err := st.Resolve(ctx, version.String())
	if err != nil {
		return err
	}
	for _, m := range semver.OnPush(have, tagOf(version)) {
		ft, err := withTag(version, m.Tag)
		if err != nil {
			return err
		}
		if err := st.Tag(ctx, ft, desc.Digest); err != nil {
			return err
		}
		if err := pushTag(ctx, st, ft, t, opts, out); err != nil {
			return err
		}
	}
	return nil
}

// notLocalError is docker's message for pushing a name the local store
// does not have; errors.Is(err, store.ErrNotFound) holds.
type notLocalError struct{ name string }

func (e notLocalError) Error() string {
	return "An image does not exist locally with the tag: " + e.name
}

func (e notLocalError) Unwrap() error { return store.ErrNotFound }

// localManifest is what a tag points at in the local store: one image, or
// a multi-platform index and the images under it.
type localManifest struct {
	digest v1.Hash
	raw    []byte
	image  v1.Image      // nil for an index
	index  v1.ImageIndex // nil for an image
	images []v1.Image    // the image, or every image under the index
}

// loadLocal reads the manifest tag points at. A tag on an index gives the
// whole index, every platform, as docker 25+ pushes it.
func loadLocal(ctx context.Context, st LocalStore, tag reference.Named) (localManifest, error) {
	desc, err := st.Resolve(ctx, tag.String())
	if errors.Is(err, store.ErrNotFound) {
		return localManifest{}, notLocalError{name: ref.FamiliarName(tag)}
	}
	if err != nil {
		return localManifest{}, err
	}
	m := localManifest{digest: desc.Digest}
	if desc.MediaType.IsIndex() {
		if m.index, err = st.ImageIndex(ctx, desc.Digest); err != nil {
			return localManifest{}, err
		}
		if m.images, err = indexImages(m.index); err != nil {
			return localManifest{}, fmt.Errorf("%s: %w", ref.Familiar(tag), err)
		}
		m.raw, err = m.index.RawManifest()
		return m, err
	}
	byDigest, err := reference.WithDigest(reference.TrimNamed(tag), digest.Digest(desc.Digest.String()))
	if err != nil {
		return localManifest{}, err
	}
	if m.image, _, err = st.Image(ctx, byDigest.String()); err != nil {
		return localManifest{}, err
	}
	m.images = []v1.Image{m.image}
	m.raw, err = m.image.RawManifest()
	return m, err
}

// indexImages returns every image under ii, nested indexes included, in
// index order.
func indexImages(ii v1.ImageIndex) ([]v1.Image, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []v1.Image
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("index %s is not complete in the local store: %w", d.Digest, err)
			}
			imgs, err := indexImages(child)
			if err != nil {
				return nil, err
			}
			out = append(out, imgs...)
		case d.MediaType.IsImage():
			img, err := ii.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s of the index is not in the local store: %w", d.Digest, err)
			}
			out = append(out, img)
		}
	}
	return out, nil
}

// pushTag pushes one tag: an image, or an index with all its images.
func pushTag(ctx context.Context, st LocalStore, tag reference.Named, t target, opts PushOptions, out io.Writer) error {
	local, err := loadLocal(ctx, st, tag)
	if err != nil {
		return err
	}
	what := ref.Familiar(tag)
	repo, err := ggcrRepo(tag, t)
	if err != nil {
		return err
	}
	dst, err := ggcrRef(tag, t)
	if err != nil {
		return err
	}
	// The layers of every image, each once: platforms may share some.
	var layers []v1.Layer
	seen := map[v1.Hash]bool{}
	// docker names a layer by its diff ID. Its config lists them; asking
	// the layer instead (l.DiffID) decompresses and hashes all of it, which
	// was most of the CPU of a push and read the whole image once more.
	diffIDs := map[v1.Hash]v1.Hash{}
	for _, img := range local.images {
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		if cf, err := img.ConfigFile(); err == nil && len(cf.RootFS.DiffIDs) == len(ls) {
			for i, l := range ls {
				if d, err := l.Digest(); err == nil {
					diffIDs[d] = cf.RootFS.DiffIDs[i]
				}
			}
		}
		for _, l := range ls {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			if !seen[d] {
				seen[d] = true
				layers = append(layers, l)
			}
		}
	}

	host := ref.Domain(tag)
	path := ref.Path(tag)
	orig := newOrigins(st.Root())
	known := orig.lookup(host)

	type item struct {
		layer  v1.Layer
		digest v1.Hash
		size   int64
		from   string
	}
	var items []item
	var ids, first []string
	scopes := []string{repo.Scope(transport.PushScope)}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err == nil && !mt.IsDistributable() {
			continue // foreign layers stay where their URLs point
		}
		d, err := l.Digest()
		if err != nil {
			return err
		}
		// A blob that is not a filesystem layer (an attestation, say) has
		// no diff ID: use its digest.
		id := d
		if diffID, ok := diffIDs[d]; ok {
			id = diffID
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		it := item{layer: l, digest: d, size: size}
		if from := known[d.String()]; from != "" && from != path {
			it.from = from
			if fromRepo, err := name.NewRepository(host+"/"+from, t.nameOpts()...); err == nil {
				scopes = append(scopes, fromRepo.Scope(transport.PullScope))
			}
		}
		items = append(items, it)
		ids = append(ids, shortHash(id))
		status := "Preparing"
		first = append(first, status)
	}

	// wharf's own client is needed only to mount from a known origin;
	// its ping and token are round trips a push without mounts saves.
	var client *http.Client
	var base string
	if slices.ContainsFunc(items, func(it item) bool { return it.from != "" }) {
		if client, base, err = blobClient(ctx, opts.Remote, t, repo, scopes); err != nil {
			return explain(err, t.host, what)
		}
	}
	// One pusher for the layers and the manifests: it pings and
	// authenticates once per repository (each remote.WriteLayer would do
	// it again), and the manifest push skips the layers it uploaded
	// instead of asking about each of them again.
	pusher, err := remote.NewPusher(t.opts...)
	if err != nil {
		return err
	}
	popts := append(slices.Clip(t.opts), remote.Reuse(pusher))
	var configs []v1.Layer
	for _, img := range local.images {
		cl, err := partial.ConfigLayer(img)
		if err != nil {
			return err
		}
		configs = append(configs, cl)
	}

	disp := newDisplay(out)
	disp.begin(ids, first)
	if !disp.tty {
		for i := range items {
			if i >= opts.jobs() {
				disp.println("%s: Waiting", ids[i])
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.jobs())
	for i, it := range items {
		if i >= opts.jobs() {
			disp.set(i, "Waiting")
		}
		g.Go(func() error {
			status, err := pushBlob(gctx, client, base, repo, it.layer, it.digest, it.size, it.from, popts, disp, i)
			if err != nil {
				disp.done(i, "Error")
				return err
			}
			disp.done(i, status, status)
			return nil
		})
	}
	// The configs go beside the layers, as go-containerregistry's image
	// push sends them, rather than one after another once every layer is
	// up; the manifest push below finds them done in the pusher.
	for _, cl := range configs {
		g.Go(func() error { return pusher.Upload(ctx, repo, cl) })
	}
	err = g.Wait()
	disp.finish()
	if err != nil {
		return explain(err, t.host, what)
	}
	var pushed []string
	for _, it := range items {
		pushed = append(pushed, it.digest.String())
	}
	_ = orig.record(host, path, pushed)

	// Configs and manifests (each child's, then the index's);
	// go-containerregistry finds the layers in place.
	if local.index != nil {
		err = remote.WriteIndex(dst, local.index, popts...)
	} else {
		err = remote.Write(dst, local.image, popts...)
	}
	if err != nil {
		return explain(err, t.host, what)
	}
	if err := st.SetRepoDigest(ctx, tag, local.digest); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	fmt.Fprintf(out, "%s: digest: %s size: %d\n", tagOf(tag), local.digest, len(local.raw))
	if idx, ok, err := st.PulledThrough(ctx, local.digest); err == nil && ok && opts.Notes != nil {
		// Only this platform was pulled, so only it could be pushed; docker
		// 25+ (containerd store) says so after the push.
		fmt.Fprintf(opts.Notes, "\n Info -> Not all multiplatform-content is present and only the available single-platform image was pushed\n"+
			"         %s -> %s\n", idx, local.digest)
	}
	return nil
}

// shortHash is docker's 12-hex short form of a digest.
func shortHash(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Hex[:12]
	}
	return h.Hex
}

// blobClient returns an HTTP client authorised for the scopes and the
// registry's base URL ("https://host"), for the HEAD and mount requests
// that go-containerregistry does not report on.
func blobClient(ctx context.Context, r Remote, t target, repo name.Repository, scopes []string) (*http.Client, string, error) {
	ch, err := transport.Ping(ctx, repo.Registry, t.rt)
	if err != nil {
		return nil, "", err
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	a, err := authn.Resolve(ctx, r.keychain(), repo)
	if err != nil {
		return nil, "", err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, a, t.rt, scopes)
	if err != nil {
		return nil, "", err
	}
	return &http.Client{Transport: rt}, scheme + "://" + repo.RegistryStr(), nil
}

// pushBlob makes one layer present in repo: it is there already, or it is
// mounted from the repository it came from, or it is uploaded. It returns
// docker's final status for the layer. c is nil unless from is set.
func pushBlob(ctx context.Context, c *http.Client, base string, repo name.Repository, l v1.Layer, d v1.Hash, size int64, from string, popts []remote.Option, disp *display, i int) (string, error) {
	disp.set(i, "Preparing")
	if from != "" {
		exists, err := blobExists(ctx, c, base, repo, d)
		if err != nil {
			return "", err
		}
		if exists {
			return "Layer already exists", nil
		}
		ok, err := mountBlob(ctx, c, base, repo, d, from)
		if err == nil && ok {
			return "Mounted from " + from, nil
		}
	}
	// go-containerregistry asks whether the blob is there (HEAD) before it
	// uploads; asking first as well cost a round trip per layer. The
	// layer's bytes are read only when it uploads them.
	pl := &progressLayer{Layer: l, disp: disp, i: i, size: size}
	if err := remote.WriteLayer(repo, pl, popts...); err != nil {
		return "", err
	}
	if !pl.read.Load() {
		return "Layer already exists", nil
	}
	return "Pushed", nil
}

// blobExists asks HEAD /v2/<repo>/blobs/<digest>.
func blobExists(ctx context.Context, c *http.Client, base string, repo name.Repository, d v1.Hash) (bool, error) {
	resp, err := bodiless(ctx, c, http.MethodHead, base+"/v2/"+repo.RepositoryStr()+"/blobs/"+d.String())
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	default:
		return false, transport.CheckError(resp, http.StatusOK, http.StatusNotFound)
	}
}

// mountBlob asks the registry to link d from another repository. A 202
// means it would rather have the bytes: the upload it opened is cancelled.
func mountBlob(ctx context.Context, c *http.Client, base string, repo name.Repository, d v1.Hash, from string) (bool, error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	resp, err := bodiless(ctx, c, http.MethodPost, base+"/v2/"+repo.RepositoryStr()+"/blobs/uploads/?"+q.Encode())
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		if loc := resp.Header.Get("Location"); loc != "" {
			if lu, err := url.Parse(loc); err == nil {
				bu, _ := url.Parse(base + "/")
				if r, err := bodiless(ctx, c, http.MethodDelete, bu.ResolveReference(lu).String()); err == nil {
					r.Body.Close()
				}
			}
		}
		return false, nil
	default:
		return false, transport.CheckError(resp, http.StatusCreated, http.StatusAccepted)
	}
}

// bodiless sends a request without a body. The caller closes the
// response body, after transport.CheckError has read any error in it.
func bodiless(ctx context.Context, c *http.Client, method, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// progressLayer feeds a layer's upload through the display; read records
// that the upload began.
type progressLayer struct {
	v1.Layer
	disp *display
	i    int
	size int64
	read atomic.Bool
}

// Compressed implements v1.Layer.
func (p *progressLayer) Compressed() (io.ReadCloser, error) {
	rc, err := p.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	if !p.read.Swap(true) {
		p.disp.set(p.i, "Pushing")
	}
	return p.disp.transfer(p.i, p.size, rc), nil
}
