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
// durable write. A blob sent in one PATCH (as docker, podman and crane
// push) is kept in its session's record (metadata.Upload.Content) when
// that PATCH is the session's first write, and moves to the blob's record
// with the commit: two writes of the database, and no file or object. A
// second chunk moves the bytes to the blob store, as every chunk of a
// larger blob goes. Sessions recorded at their POST (on PostgreSQL, whose
// replicas share them) keep a small first PATCH in their record too; the
// store upload their POST started (on S3 nothing in the bucket yet) is
// dropped when the bytes go to the blob's record.
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

// completeInRecord commits session u as blob d into the blob's metadata
// record when the session's record kept its bytes and no last chunk
// follows them, or when the final request carries a small blob whole, and
// reports whether it did. Kept bytes that a last chunk follows move to
// the blob store first, and the commit goes on from there.
func (s *Service) completeInRecord(ctx context.Context, u *metadata.Upload, lease *uploadLease, d digest.Digest, r io.Reader, length int64) (bool, error) {
	switch {
	case u.Content != nil && (r == nil || length == 0):
		if err := s.commitKept(ctx, u, d); err != nil {
			return true, err
		}
		if s.storedAtPost(u) {
			s.dropStoredUpload(ctx, u)
		}
		return true, nil
	case u.Content != nil:
		return false, s.moveToStore(ctx, u)
	case u.Offset == 0 && r != nil && s.isSmall(length):
		return true, s.completeSmall(ctx, u, lease, d, r, length)
	}
	return false, nil
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
	if err := s.small.PutSmallBlob(ctx, u.Repo, d, content, s.uploadEnd(u)); err != nil {
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

// peekSmall reads the first chunk of a fresh session, of length bytes (-1:
// unknown, as docker sends it), when it may be small: it returns the
// chunk's bytes if they are at most SmallBlobMax, else nil and a reader
// of the whole chunk, which the caller streams to the blob store.
func (s *Service) peekSmall(r io.Reader, length int64) ([]byte, io.Reader, error) {
	max := s.opts.SmallBlobMax
	if s.small == nil || max <= 0 || length == 0 || length > max {
		return nil, r, nil
	}
	want := length
	if want < 0 {
		want = max + 1 // one more than fits tells a larger chunk
	}
	buf := make([]byte, want)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil && int64(n) == length:
		return buf, nil, nil
	case err == nil:
		return nil, io.MultiReader(bytes.NewReader(buf), r), nil
	case errors.Is(err, io.EOF) && n == 0:
		return nil, bytes.NewReader(nil), nil
	case errors.Is(err, io.ErrUnexpectedEOF) && length < 0:
		return buf[:n], nil, nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, nil, bodyErr(int64(n), length, nil)
	default:
		return nil, nil, bodyErr(int64(n), length, err)
	}
}

// keepInRecord makes content the bytes of session u, which holds none
// yet, kept in its record.
func keepInRecord(u *metadata.Upload, content []byte) error {
	h, err := newHash(u.Algorithm)
	if err != nil {
		return err
	}
	h.Write(content)
	if u.HashState, err = marshalHash(h); err != nil {
		return err
	}
	u.Offset, u.Content = int64(len(content)), content
	return nil
}

// moveToStore writes the bytes session u's record kept into its upload in
// the blob store (started now, or by its POST), for a chunk that follows
// them; u's record changes
// only with that chunk's, so a failure leaves the session as it was.
func (s *Service) moveToStore(ctx context.Context, u *metadata.Upload) error {
	if !s.storedAtPost(u) {
		if err := s.startStored(ctx, u); err != nil {
			return err
		}
	}
	w, err := s.blobs.WriteUpload(ctx, u.ID, 0, u.StoreState)
	if err != nil {
		return fmt.Errorf("open upload %s: %w", u.ID, err)
	}
	if _, err := w.Write(u.Content); err != nil {
		abortUpload(w)
		return fmt.Errorf("write upload %s: %w", u.ID, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write upload %s: %w", u.ID, err)
	}
	u.StoreState, u.Content = w.State(), nil
	return nil
}

// commitKept is CompleteUpload, with no last chunk, for a session whose
// record kept its bytes: they become blob d's record's, and the session
// ends, in one write.
func (s *Service) commitKept(ctx context.Context, u *metadata.Upload, d digest.Digest) error {
	h, err := restoreHash(u.Algorithm, u.HashState)
	if d.Algorithm() != u.Algorithm {
		// The session guessed the algorithm wrong: hash again.
		if h, err = newHash(d.Algorithm()); err == nil {
			h.Write(u.Content)
		}
	}
	if err != nil {
		return err
	}
	if err := checkDigest(d, h); err != nil {
		return err
	}
	return s.small.PutSmallBlob(ctx, u.Repo, d, u.Content, s.uploadEnd(u))
}

// storedAtPost reports whether session u's store upload was started by
// its POST, which recorded it (on PostgreSQL, whose replicas share
// sessions), rather than by its first write to the blob store (a signed
// id): a session whose record keeps its bytes then has an empty upload
// in the store to drop.
func (s *Service) storedAtPost(u *metadata.Upload) bool {
	_, _, signed := s.ids.verify(u.Repo, u.ID)
	return !signed
}

// uploadEnd names session u for PutSmallBlob to end.
func (s *Service) uploadEnd(u *metadata.Upload) metadata.UploadEnd {
	end := metadata.UploadEnd{ID: u.ID}
	if _, started, ok := s.ids.verify(u.Repo, u.ID); ok {
		end.Started = started
	}
	return end
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
