package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// StatBlob returns the size of blob d if repo holds it. Unless the caller
// may only pull (WithPullOnly), the answer also renews repo's link to d
// for a garbage collection's grace period: a client that finds a layer
// present skips it and names it in its manifest later, which must still
// find it linked.
func (s *Service) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	if err := ValidateName(repo); err != nil {
		return 0, err
	}
	size, err := s.meta.BlobSize(ctx, repo, d)
	if err == nil {
		err = s.renewLink(ctx, repo, d)
	}
	if errors.Is(err, metadata.ErrNotFound) {
		if m, merr := s.meta.GetManifest(ctx, repo, d); merr == nil {
			return int64(len(m.Content)), nil
		}
		return 0, blobUnknown(d)
	}
	return size, err
}

// LinkRenewAfter is how old a link must be before a pusher's blob HEAD
// renews it: a write at most once a minute per link, instead of one per
// HEAD. A garbage collection's grace must exceed it by the longest time a
// push takes from its HEADs to its manifest (the default grace is an hour).
const LinkRenewAfter = DefaultGCGrace / 60

// renewLink renews repo's existing link to d if it is older than
// LinkRenewAfter. ErrNotFound means a collection pruned it since it was
// read: the caller then reports the blob unknown, and the client uploads
// it again instead of naming a blob its manifest could not use.
func (s *Service) renewLink(ctx context.Context, repo string, d digest.Digest) error {
	if pullOnly(ctx) {
		return nil
	}
	c, ok := s.meta.(metadata.Collector)
	if !ok {
		return nil
	}
	// The clock collections measure their grace with.
	return c.RenewBlobLink(ctx, repo, d, s.opts.Now().Add(-LinkRenewAfter))
}

// OpenBlob returns a reader of blob d if repo holds it.
func (s *Service) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	b, err := s.readBlob(ctx, repo, d, false)
	return b.Body, b.Size, err
}

// BlobRead is what a GET of a blob answers: a URL to send the client to,
// or the bytes.
type BlobRead struct {
	// URL, when not empty, is where the client fetches the bytes itself
	// (Body is then nil).
	URL string
	// Body holds the bytes otherwise; the caller closes it.
	Body io.ReadSeekCloser
	// Size is Body's size.
	Size int64
}

// GetBlob is OpenBlob for a client's GET: when the blob store hands out
// URLs of its own (blobstore.Redirector) it answers with one instead of
// the bytes, after the same check that repo holds d, so that no caller
// the metadata would refuse ever learns a URL. Manifests read through the
// blob endpoint come from the database and are always served as bytes.
func (s *Service) GetBlob(ctx context.Context, repo string, d digest.Digest) (BlobRead, error) {
	return s.readBlob(ctx, repo, d, true)
}

func (s *Service) readBlob(ctx context.Context, repo string, d digest.Digest, redirect bool) (BlobRead, error) {
	if err := ValidateName(repo); err != nil {
		return BlobRead{}, err
	}
	b, err := s.linkedBlob(ctx, repo, d)
	if errors.Is(err, metadata.ErrNotFound) {
		// Manifests are content too: serve them by digest from the blob
		// endpoint, as clients that fetch any descriptor there expect.
		if m, merr := s.meta.GetManifest(ctx, repo, d); merr == nil {
			return BlobRead{Body: nopCloser{bytes.NewReader(m.Content)}, Size: int64(len(m.Content))}, nil
		}
		return BlobRead{}, blobUnknown(d)
	} else if err != nil {
		return BlobRead{}, err
	}
	if b.InRecord {
		// Unless a collection took the record since it was read: the
		// link went before it, and the store will not have the blob
		// either.
		if r, ok, err := s.smallBlob(ctx, d); ok || err != nil {
			return r, err
		}
	}
	if rd, ok := s.blobs.(blobstore.Redirector); ok && redirect {
		u, err := rd.RedirectURL(ctx, d)
		if err != nil {
			return BlobRead{}, fmt.Errorf("redirect blob %s: %w", d, err)
		}
		if u != "" {
			return BlobRead{URL: u}, nil
		}
	}
	rc, size, err := s.blobs.Open(ctx, d)
	if errors.Is(err, blobstore.ErrNotFound) && !b.InRecord {
		// Its record took its bytes since the link was read?
		if r, ok, err := s.smallBlob(ctx, d); ok || err != nil {
			return r, err
		}
	}
	if errors.Is(err, blobstore.ErrNotFound) {
		// Linked but gone from the store: report it as unknown rather than
		// failing the request, and say so in the log.
		s.log.ErrorContext(ctx, "linked blob missing from blob store", "repo", repo, "digest", d)
		return BlobRead{}, blobUnknown(d)
	}
	if err != nil {
		return BlobRead{}, fmt.Errorf("open blob %s: %w", d, err)
	}
	return BlobRead{Body: rc, Size: size}, nil
}

// DeleteBlob removes repo's link to blob d. The bytes stay until garbage
// collection finds nothing else references them.
func (s *Service) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := ValidateName(repo); err != nil {
		return err
	}
	err := s.meta.UnlinkBlob(ctx, repo, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return blobUnknown(d)
	}
	if err == nil {
		s.auditDelete(ctx, "blob", repo, d.String())
	}
	return err
}

// MountBlob links blob d into repo from repository from, or from any
// repository that holds it when from is empty; with a RepoFilter in ctx,
// any that the filter accepts (the caller may pull it, so the mount tells
// it nothing it could not read). It reports whether the blob was mounted;
// false means the caller should upload it instead.
func (s *Service) MountBlob(ctx context.Context, repo string, d digest.Digest, from string) (bool, error) {
	defer s.pushes.begin()()
	if err := ValidateName(repo); err != nil {
		return false, err
	}
	var b metadata.BlobInfo
	var err error
	switch keep := repoFilter(ctx); {
	case from != "":
		if ValidateName(from) != nil {
			return false, nil
		}
		b, err = s.linkedBlob(ctx, from, d)
	case keep != nil:
		if from, err = s.visibleHolder(ctx, d, keep); err == nil {
			b, err = s.linkedBlob(ctx, from, d)
		}
	default:
		b, err = s.anyLinkedBlob(ctx, d)
	}
	if errors.Is(err, metadata.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// A mount within a namespace adds nothing to its usage (a blob counts
	// once there); from elsewhere it adds the blob.
	if from == "" || Namespace(from) != Namespace(repo) {
		if err := s.enforceQuota(ctx, repo, d, b.Size, false); err != nil {
			return false, err
		}
	}
	if b.InRecord {
		// In one transaction with the link: a collection of the record
		// either came first (then nothing is mounted) or waits.
		return s.mountSmall(ctx, repo, d)
	}
	present, err := s.holdForMount(ctx, d, b.Size)
	if err != nil {
		return false, err
	}
	if !present {
		// Its record took its bytes since the link was read?
		return s.mountSmall(ctx, repo, d)
	}
	if err := s.meta.LinkBlob(ctx, repo, d, b.Size); err != nil {
		return false, err
	}
	return true, nil
}

// keepBlob tells the metadata, before a commit or a mount looks for blob
// d's bytes, that it is about to rely on them (metadata.Collector.KeepBlob):
// a garbage collection deleting them finishes first, or keeps them. A store
// that guards its own blobs (blobstore.Collector: the filesystem, with file
// times) settles that race itself, and its pushes skip this write.
func (s *Service) keepBlob(ctx context.Context, d digest.Digest, size int64) error {
	if _, ok := s.blobs.(blobstore.Collector); ok {
		return nil
	}
	c, ok := s.meta.(metadata.Collector)
	if !ok {
		return nil
	}
	return c.KeepBlob(ctx, d, size)
}

// holdForMount reports whether the blob store holds d, first making sure
// that a garbage collection racing the mount keeps the bytes (or has taken
// them first, and the mount becomes an upload).
func (s *Service) holdForMount(ctx context.Context, d digest.Digest, size int64) (bool, error) {
	if c, ok := s.blobs.(blobstore.Collector); ok {
		// Marked as reused, like a commit that finds the blob present.
		present, err := c.Reuse(ctx, d)
		if err != nil {
			return false, fmt.Errorf("reuse blob %s: %w", d, err)
		}
		return present, nil
	}
	if err := s.keepBlob(ctx, d, size); err != nil {
		return false, err
	}
	if _, err := s.blobs.Stat(ctx, d); err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return true, nil
}

// Bounds of visibleHolder's search: a mount that finds no repository it
// may use among this many holders becomes an upload, which is always
// correct, so a blob held by many repositories the caller may not pull
// costs at most this many filter calls.
const (
	holderBatch = 100
	maxHolders  = 1000
)

// visibleHolder returns a repository that holds d and that keep accepts,
// or metadata.ErrNotFound.
func (s *Service) visibleHolder(ctx context.Context, d digest.Digest, keep RepoFilter) (string, error) {
	last := ""
	for seen := 0; seen < maxHolders; {
		names, err := s.meta.BlobRepositories(ctx, d, last, holderBatch)
		if err != nil {
			return "", err
		}
		for _, name := range names {
			ok, err := keep(ctx, name)
			if err != nil || ok {
				return name, err
			}
		}
		if len(names) < holderBatch {
			break
		}
		seen += len(names)
		last = names[len(names)-1]
	}
	return "", fmt.Errorf("blob %s in a repository the caller may read: %w", d, metadata.ErrNotFound)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func blobUnknown(d digest.Digest) error {
	return Errorf(ErrBlobUnknown, "blob %s not found in repository", d).withDetail(map[string]any{"digest": d.String()})
}
