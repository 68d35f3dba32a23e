package replicate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Endpoint is a registry this package reads from or writes to.
type Endpoint struct {
	// URL is the registry's base URL: https://host[:port], or http:// for
	// a plain-HTTP registry.
	URL string
	// Prefix is put before every repository name on this registry
	// ("" keeps the source's names).
	Prefix string
	// Username and Password authenticate with Basic or the token flow;
	// both empty is anonymous.
	Username, Password string
}

// repo names repository r on e.
func (e Endpoint) repo(r string) (name.Repository, error) {
	u, err := url.Parse(e.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return name.Repository{}, fmt.Errorf("registry URL %q: want http(s)://host[:port]", e.URL)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	full := strings.Trim(strings.Trim(e.Prefix, "/")+"/"+r, "/")
	return name.NewRepository(u.Host+"/"+full, opts...)
}

func (e Endpoint) auth() authn.Authenticator {
	if e.Username == "" && e.Password == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: e.Username, Password: e.Password}
}

// Copier copies manifests, their blobs and their referrers from Source
// to Dest with go-containerregistry: blobs stream from one registry to
// the other, and those the destination repository has already are
// skipped (ggcr asks it first). A blob the copier put into another
// repository of the destination is mounted from there instead of sent.
type Copier struct {
	Source, Dest Endpoint
	// Transport carries every request (nil: http.DefaultTransport).
	Transport http.RoundTripper
	// SourceTransport, when set, carries the requests to Source instead:
	// wharf serve reads itself in-process through it.
	SourceTransport http.RoundTripper
	// Mounts remembers where at Dest the blobs went (nil: no mounts).
	Mounts *Mounts
}

func (c *Copier) opts(ctx context.Context, e Endpoint) []remote.Option {
	t := c.Transport
	if e == c.Source && c.SourceTransport != nil {
		t = c.SourceTransport
	}
	if t == nil {
		t = http.DefaultTransport
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(e.auth()), remote.WithTransport(t)}
}

// maxReferrerDepth bounds referrers of referrers (a signature of an
// SBOM of an image is depth 2), so a cycle cannot recurse forever.
const maxReferrerDepth = 4

// ErrSourceGone is returned when what was to be copied is no longer at
// the source (deleted since its push was recorded): there is nothing to
// copy, and the delete's own event follows.
var ErrSourceGone = errors.New("no longer at the source")

// Copy copies repo's manifest ref (a tag or a digest) to the same name
// under Dest, its referrers with it, and returns the manifest's digest.
func (c *Copier) Copy(ctx context.Context, repo, ref string) (v1.Hash, error) {
	return c.CopyAs(ctx, repo, ref, ref)
}

// CopyAs copies repo's manifest ref to Dest under dstRef (a tag, or the
// same digest), its referrers with it: an event's digest is copied under
// its tag, so that a tag moved twice reaches Dest as it moved, in order.
func (c *Copier) CopyAs(ctx context.Context, repo, ref, dstRef string) (v1.Hash, error) {
	src, dst, err := c.repos(repo)
	if err != nil {
		return v1.Hash{}, err
	}
	srcRef, err := reference(src, ref)
	if err != nil {
		return v1.Hash{}, err
	}
	to, err := reference(dst, dstRef)
	if err != nil {
		return v1.Hash{}, err
	}
	desc, err := remote.Get(srcRef, c.opts(ctx, c.Source)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return v1.Hash{}, fmt.Errorf("read %s: %w: %w", srcRef, ErrSourceGone, err)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read %s: %w", srcRef, err)
	}
	if err := c.put(ctx, desc, to); err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, c.copyReferrers(ctx, src, dst, desc.Digest, 1)
}

func (c *Copier) repos(repo string) (src, dst name.Repository, err error) {
	if src, err = c.Source.repo(repo); err != nil {
		return src, dst, fmt.Errorf("source: %w", err)
	}
	if dst, err = c.Dest.repo(repo); err != nil {
		return src, dst, fmt.Errorf("destination: %w", err)
	}
	return src, dst, nil
}

func reference(r name.Repository, ref string) (name.Reference, error) {
	if strings.Contains(ref, ":") {
		return name.NewDigest(r.Name()+"@"+ref, name.StrictValidation)
	}
	return r.Tag(ref), nil
}

// put writes desc (whatever kind of manifest it is) and what it
// references to dst.
func (c *Copier) put(ctx context.Context, desc *remote.Descriptor, dst name.Reference) error {
	opts := c.opts(ctx, c.Dest)
	var err error
	switch {
	case desc.MediaType.IsIndex():
		var idx v1.ImageIndex
		if idx, err = desc.ImageIndex(); err == nil {
			idx = c.Mounts.index(idx, dst.Context())
			if err = remote.WriteIndex(dst, idx, opts...); err == nil {
				c.Mounts.wroteIndex(idx)
			}
		}
	default:
		// An image, or an artifact in an image manifest (a signature, an
		// SBOM): its config and layers are blobs all the same.
		var img v1.Image
		if img, err = desc.Image(); err == nil {
			img = c.Mounts.image(img, dst.Context())
			if err = remote.Write(dst, img, opts...); err == nil {
				c.Mounts.wrote(img, dst.Context())
			}
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

// copyReferrers copies the manifests whose subject is d, and theirs.
func (c *Copier) copyReferrers(ctx context.Context, src, dst name.Repository, d v1.Hash, depth int) error {
	if depth > maxReferrerDepth {
		return nil
	}
	idx, err := remote.Referrers(src.Digest(d.String()), c.opts(ctx, c.Source)...)
	if err != nil {
		return fmt.Errorf("referrers of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("referrers of %s: %w", d, err)
	}
	for _, m := range im.Manifests {
		desc, err := remote.Get(src.Digest(m.Digest.String()), c.opts(ctx, c.Source)...)
		if err != nil {
			return fmt.Errorf("read referrer %s: %w", m.Digest, err)
		}
		if err := c.put(ctx, desc, dst.Digest(m.Digest.String())); err != nil {
			return err
		}
		if err := c.copyReferrers(ctx, src, dst, m.Digest, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// ErrDeleteUnsupported is returned when the destination refuses to
// delete (the reference registry does unless configured to allow it).
var ErrDeleteUnsupported = errors.New("destination does not allow deletes")

// Delete deletes repo's tag or manifest ref at Dest. Gone already is
// success: a delete replayed after a retry must not fail.
func (c *Copier) Delete(ctx context.Context, repo, ref string) error {
	_, dst, err := c.repos(repo)
	if err != nil {
		return err
	}
	r, err := reference(dst, ref)
	if err != nil {
		return err
	}
	return c.deleteRef(ctx, r)
}

func (c *Copier) deleteRef(ctx context.Context, r name.Reference) error {
	err := remote.Delete(r, c.opts(ctx, c.Dest)...)
	var terr *transport.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return nil
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusMethodNotAllowed || terr.StatusCode == http.StatusBadRequest && hasCode(terr, transport.UnsupportedErrorCode)):
		return fmt.Errorf("delete %s: %w", r, ErrDeleteUnsupported)
	default:
		return fmt.Errorf("delete %s: %w", r, err)
	}
}

// DeleteRepository deletes what repo holds at Dest, as far as the OCI
// API can (it has no call that deletes a repository): each tag's
// manifest by digest, which takes every tag naming it along, after the
// manifests that refer to it (signatures, SBOMs). What is gone already,
// the repository included, counts as done.
func (c *Copier) DeleteRepository(ctx context.Context, repo string) error {
	_, dst, err := c.repos(repo)
	if err != nil {
		return err
	}
	tags, err := remote.List(dst, c.opts(ctx, c.Dest)...)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", dst, err)
	}
	deleted := map[v1.Hash]bool{}
	for _, tag := range tags {
		d, err := remote.Head(dst.Tag(tag), c.opts(ctx, c.Dest)...)
		if isNotFound(err) {
			continue // deleted with a digest before it
		}
		if err != nil {
			return fmt.Errorf("head %s:%s: %w", dst, tag, err)
		}
		if err := c.deleteWithReferrers(ctx, dst, d.Digest, 1, deleted); err != nil {
			return fmt.Errorf("delete repository %s: %w", dst, err)
		}
	}
	return nil
}

// deleteWithReferrers deletes manifest d of dst after its referrers (and
// theirs, to maxReferrerDepth), skipping those already deleted.
func (c *Copier) deleteWithReferrers(ctx context.Context, dst name.Repository, d v1.Hash, depth int, deleted map[v1.Hash]bool) error {
	if deleted[d] {
		return nil
	}
	deleted[d] = true
	if depth <= maxReferrerDepth {
		idx, err := remote.Referrers(dst.Digest(d.String()), c.opts(ctx, c.Dest)...)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("referrers of %s: %w", d, err)
		}
		if err == nil {
			im, err := idx.IndexManifest()
			if err != nil {
				return fmt.Errorf("referrers of %s: %w", d, err)
			}
			for _, m := range im.Manifests {
				if err := c.deleteWithReferrers(ctx, dst, m.Digest, depth+1, deleted); err != nil {
					return err
				}
			}
		}
	}
	return c.deleteRef(ctx, dst.Digest(d.String()))
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

func hasCode(e *transport.Error, code transport.ErrorCode) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// Report says what a reconcile did.
type Report struct {
	// Copied are the tags that were missing or stale at Dest.
	Copied []string
	// Deleted are the tags Dest had that the source no longer has.
	Deleted []string
	// InSync counts the tags already the same on both sides.
	InSync int
}

// Reconcile makes repo's tags at Dest match the source's (tag list and
// digests), repairing what event-driven replication missed (the
// destination was down, a claim lapsed past its retries).
func (c *Copier) Reconcile(ctx context.Context, repo string) (Report, error) {
	var rep Report
	src, dst, err := c.repos(repo)
	if err != nil {
		return rep, err
	}
	srcTags, err := remote.List(src, c.opts(ctx, c.Source)...)
	if err != nil {
		return rep, fmt.Errorf("list %s: %w", src, err)
	}
	dstTags, err := remote.List(dst, c.opts(ctx, c.Dest)...)
	var terr *transport.Error
	if err != nil && !(errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound) {
		return rep, fmt.Errorf("list %s: %w", dst, err)
	}
	have := make(map[string]bool, len(dstTags))
	for _, t := range dstTags {
		have[t] = true
	}
	for _, tag := range srcTags {
		s, err := remote.Head(src.Tag(tag), c.opts(ctx, c.Source)...)
		if err != nil {
			return rep, fmt.Errorf("head %s:%s: %w", src, tag, err)
		}
		if have[tag] {
			d, err := remote.Head(dst.Tag(tag), c.opts(ctx, c.Dest)...)
			if err == nil && d.Digest == s.Digest {
				rep.InSync++
				delete(have, tag)
				continue
			}
		}
		delete(have, tag)
		if _, err := c.Copy(ctx, repo, tag); err != nil {
			return rep, err
		}
		rep.Copied = append(rep.Copied, tag)
	}
	for _, tag := range dstTags {
		if !have[tag] {
			continue
		}
		if err := c.Delete(ctx, repo, tag); err != nil {
			return rep, err
		}
		rep.Deleted = append(rep.Deleted, tag)
	}
	return rep, nil
}
