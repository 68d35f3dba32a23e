package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// Small blobs (image configs, tiny layers) are a large share of the blobs
// of a push, and a blob store charges each the same fixed cost: on the
// filesystem an fsync of the file, a rename and an fsync of its directory,
// all before the link's own transaction can commit; on S3 a PUT or two.
// When one request carries a blob whole (POST ?digest=, or POST then a
// PUT with the body, as containerd, BuildKit and oras push) and it is at
// most Options.SmallBlobMax bytes, its bytes go into the blob's metadata
// record in the link's transaction instead (metadata.SmallBlobs): one
// durable write. A blob that arrives in chunks (PATCH, as docker, podman
// and crane push) goes to the blob store as always, since its session's
// bytes already are there.
//
// Reads and mounts learn from the link's lookup which of the two places
// holds a blob (metadata.BlobInfo), so a small blob stored as a file
// costs no extra query; garbage collection looks in both.

// DefaultSmallBlobMax is the default of Options.SmallBlobMax: most image
// configs are a few KiB, and up to this size a blob costs the database
// a few pages.
const DefaultSmallBlobMax = 16 << 10

// isSmall reports whether a blob of length bytes, sent whole, is kept in
// the metadata store.
func (s *Service) isSmall(length int64) bool {
	return s.small != nil && length > 0 && length <= s.opts.SmallBlobMax
}

// readSmall reads a small blob's body (length bytes) and checks it
// against d.
func (s *Service) readSmall(ctx context.Context, d digest.Digest, r io.Reader, length int64, lease *uploadLease) ([]byte, error) {
	h, err := newHash(d.Algorithm())
	if err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, length))
	if _, err := s.verifyBody(ctx, buf, d, h, r, length, lease); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// putSmall is PutBlob for a small blob.
func (s *Service) putSmall(ctx context.Context, repo string, d digest.Digest, r io.Reader, length int64) (int64, error) {
	content, err := s.readSmall(ctx, d, r, length, nil)
	if err != nil {
		return 0, err
	}
	if err := s.small.PutSmallBlob(ctx, repo, d, content, metadata.UploadEnd{}); err != nil {
		return 0, err
	}
	n := int64(len(content))
	s.log.InfoContext(ctx, "blob committed", "repo", repo, "digest", d, "bytes", n, "kept", "metadata")
	return n, nil
}

// completeSmall is CompleteUpload for a session that holds no bytes yet
// and whose final PUT carries a small blob whole: the commit ends the
// session too.
func (s *Service) completeSmall(ctx context.Context, u *metadata.Upload, lease *uploadLease, d digest.Digest, r io.Reader, length int64) error {
	content, err := s.readSmall(ctx, d, r, length, lease)
	if errors.Is(err, errLeaseLost) {
		return s.writtenElsewhere(ctx, u)
	}
	if err != nil {
		return err
	}
	end := metadata.UploadEnd{ID: u.ID}
	if _, started, ok := s.ids.verify(u.Repo, u.ID); ok {
		end.Started = started
	}
	if err := s.small.PutSmallBlob(ctx, u.Repo, d, content, end); err != nil {
		return err
	}
	u.Offset = int64(len(content))
	s.dropStoredUpload(ctx, u)
	return nil
}

// linkedBlob is the metadata's BlobSize, and says where the bytes are.
func (s *Service) linkedBlob(ctx context.Context, repo string, d digest.Digest) (metadata.BlobInfo, error) {
	if s.small != nil {
		return s.small.LinkedBlob(ctx, repo, d)
	}
	size, err := s.meta.BlobSize(ctx, repo, d)
	return metadata.BlobInfo{Size: size}, err
}

// anyLinkedBlob is the metadata's AnyBlobSize, and says where the bytes
// are.
func (s *Service) anyLinkedBlob(ctx context.Context, d digest.Digest) (metadata.BlobInfo, error) {
	if s.small != nil {
		return s.small.AnyLinkedBlob(ctx, d)
	}
	size, err := s.meta.AnyBlobSize(ctx, d)
	return metadata.BlobInfo{Size: size}, err
}

// smallBlob returns d's bytes from its metadata record, if it holds them.
func (s *Service) smallBlob(ctx context.Context, d digest.Digest) (BlobRead, bool, error) {
	if s.small == nil {
		return BlobRead{}, false, nil
	}
	b, err := s.small.SmallBlob(ctx, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return BlobRead{}, false, nil
	}
	if err != nil {
		return BlobRead{}, false, err
	}
	return BlobRead{Body: nopCloser{bytes.NewReader(b)}, Size: int64(len(b))}, true, nil
}

// mountSmall mounts d into repo if its metadata record holds its bytes.
func (s *Service) mountSmall(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	if s.small == nil {
		return false, nil
	}
	return s.small.MountSmallBlob(ctx, repo, d)
}

// collectSmall deletes the unused records that hold blobs' bytes, which
// a walk of the blob store does not find. Each page is one transaction,
// so a push or mount of the same blob either comes first (the record is
// used then) or finds no bytes and stores its own.
func (s *Service) collectSmall(ctx context.Context, cutoff, linkSince time.Time, dryRun bool, pace *gcPacer, rep *GCReport) error {
	// Whatever the limit is now: records kept under an earlier one need
	// collecting too.
	if s.small == nil {
		return nil
	}
	var after digest.Digest
	for {
		page, err := s.small.CollectSmallBlobs(ctx, cutoff, linkSince, after, gcBatch, dryRun)
		if err != nil {
			return fmt.Errorf("collect small blobs: %w", err)
		}
		for _, b := range page {
			rep.Scanned++
			rep.Blobs++
			rep.Bytes += b.Size
			if !dryRun {
				s.log.InfoContext(ctx, "blob collected", "digest", b.Digest, "bytes", b.Size, "kept", "metadata")
			}
		}
		if len(page) < gcBatch {
			return nil
		}
		after = page[len(page)-1].Digest
		if err := pace.step(ctx); err != nil {
			return err
		}
	}
}
