package registry

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// A monolithic push names its digest before it sends the bytes: POST
// ?digest= with the body, or POST and then PUT ?digest= with the body. On
// a blob store that can write a blob in its place (blobstore.BlobCreator,
// S3) those bytes skip the upload area and the move out of it, which on
// an object store is a server-side copy that reads and writes every byte
// again. The rules of uploads still hold:
//   - the bytes are hashed as they stream and committed only if they
//     match the digest, so nothing unverified ever shows as a blob;
//   - KeepBlob precedes the commit, and precedes relying on bytes found
//     already stored, so that a garbage collection racing the push either
//     finished first or keeps the bytes;
//   - a push that fails leaves its session (if it has one) where it was
//     recorded, and the blob store shows nothing of it.

// blobCreator returns the blob store as a BlobCreator, or nil. A store
// that guards its own blobs against collection (blobstore.Collector, the
// filesystem) is left out: this path guards them with KeepBlob, as a store
// without that guard needs, and never calls Reuse.
func (s *Service) blobCreator() blobstore.BlobCreator {
	if _, ok := s.blobs.(blobstore.Collector); ok {
		return nil
	}
	bc, _ := s.blobs.(blobstore.BlobCreator)
	return bc
}

// createBlob stores the body r (length bytes, or to EOF when length < 0)
// as blob d, straight in its place, and returns its size. Under a lease it
// returns errLeaseLost once another writer took the session.
func (s *Service) createBlob(ctx context.Context, bc blobstore.BlobCreator, d digest.Digest, r io.Reader, length int64, lease *uploadLease) (int64, error) {
	h, err := newHash(d.Algorithm())
	if err != nil {
		return 0, err
	}
	size, stored, err := s.storedBlob(ctx, d)
	if err != nil {
		return 0, err
	}
	if stored {
		// Pushed before, perhaps to another repository: the body only has
		// to prove that it is the same bytes.
		n, err := s.verifyBody(ctx, io.Discard, d, h, r, length, lease)
		if err == nil && n != size {
			// The digests matched, so this is a damaged store.
			err = fmt.Errorf("blob %s holds %d bytes, but its push carried %d", d, size, n)
		}
		return n, err
	}
	w, err := bc.CreateBlob(ctx, d, length)
	if err != nil {
		return 0, fmt.Errorf("create blob %s: %w", d, err)
	}
	defer w.Abort() // after Commit it does nothing
	n, err := s.verifyBody(ctx, w, d, h, r, length, lease)
	if err != nil {
		return 0, err
	}
	stop := lease.keepAlive(ctx)
	defer stop()
	if err := s.keepBlob(ctx, d, n); err != nil {
		return 0, err
	}
	if err := w.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit blob %s: %w", d, err)
	}
	return n, nil
}

// verifyBody streams the body to w through h and checks it: its reading,
// its declared length, its digest, and the claim on the session.
func (s *Service) verifyBody(ctx context.Context, w io.Writer, d digest.Digest, h hash.Hash, r io.Reader, length int64, lease *uploadLease) (int64, error) {
	n, readErr, writeErr := leasedCopy(ctx, w, h, r, length, lease)
	if err := lease.err(); err != nil {
		return 0, err
	}
	if writeErr != nil {
		return 0, fmt.Errorf("write blob %s: %w", d, writeErr)
	}
	if err := bodyErr(n, length, readErr); err != nil {
		return 0, err
	}
	return n, checkDigest(d, h)
}

// storedBlob reports whether blob d's bytes are stored, and their size,
// dating d's record (KeepBlob) before it answers yes: a collection that
// took the bytes first is seen by the second look, and one that comes
// later keeps them.
func (s *Service) storedBlob(ctx context.Context, d digest.Digest) (int64, bool, error) {
	size, err := s.blobs.Stat(ctx, d)
	if errors.Is(err, blobstore.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("stat blob %s: %w", d, err)
	}
	if err := s.keepBlob(ctx, d, size); err != nil {
		return 0, false, err
	}
	if _, err := s.blobs.Stat(ctx, d); errors.Is(err, blobstore.ErrNotFound) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return size, true, nil
}

// completeDirect is CompleteUpload for a session that holds no bytes yet
// and whose final PUT carries the whole blob.
func (s *Service) completeDirect(ctx context.Context, bc blobstore.BlobCreator, u *metadata.Upload, lease *uploadLease, d digest.Digest, r io.Reader, length int64) error {
	n, err := s.createBlob(ctx, bc, d, r, length, lease)
	if errors.Is(err, errLeaseLost) {
		return s.writtenElsewhere(ctx, u)
	}
	if err != nil {
		return err
	}
	u.Offset = n
	s.dropStoredUpload(ctx, u)
	return nil
}

// dropStoredUpload removes session u's upload from the blob store after
// its blob was committed without it, from the final request's body: what
// the recorded state names (nothing, unless a write failed) is none of the
// blob. A session never recorded never had an upload in the store.
func (s *Service) dropStoredUpload(ctx context.Context, u *metadata.Upload) {
	if unrecorded(u) {
		return
	}
	if err := s.blobs.CancelUpload(context.WithoutCancel(ctx), u.ID, u.StoreState); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		s.log.WarnContext(ctx, "upload bytes not removed", "upload", u.ID, "err", err)
	}
}
