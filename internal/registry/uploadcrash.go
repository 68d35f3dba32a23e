package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// Finishing an upload takes two steps that no transaction spans: the blob
// store moves the bytes into place, then the metadata links the blob and
// ends the session. A crash between the two (of the process or of the
// machine) leaves a live session whose upload file is already a blob, and
// a client that got no answer retries its PUT. The functions below let
// that retry finish the upload from the committed blob: the session's hash
// state, plus the retried last chunk if any, must still hash to the digest
// asked for, so the blob holds exactly the session's bytes.

// hashWithoutStoring advances u over a last chunk that can no longer be
// written, because the upload file was committed by an earlier attempt:
// its bytes are hashed, so that the digest check proves they are the ones
// that attempt committed, and dropped.
func (s *Service) hashWithoutStoring(u *metadata.Upload, r io.Reader, length int64) error {
	h, err := restoreHash(u.Algorithm, u.HashState)
	if err != nil {
		return err
	}
	src := r
	if length >= 0 {
		src = io.LimitReader(r, length)
	}
	n, readErr, _ := HashCopy(io.Discard, h, src)
	if err := bodyErr(n, length, readErr); err != nil {
		return err
	}
	state, err := marshalHash(h)
	if err != nil {
		return err
	}
	u.Offset += n
	u.HashState = state
	return nil
}

// adoptCommitted accepts blob d, already committed by an earlier attempt
// to finish session u, as the session's result. The blob is marked reused
// first, as a commit that finds its blob present does, so that a garbage
// collection racing this retry keeps it until the link is recorded (on a
// store that is not a Collector, CompleteUpload's keepBlob did that). When
// the blob is gone too (collected while unlinked), the session can never
// finish: it is ended, and the client must upload again.
func (s *Service) adoptCommitted(ctx context.Context, u *metadata.Upload, d digest.Digest) error {
	present := true
	if c, ok := s.blobs.(blobstore.Collector); ok {
		var err error
		if present, err = c.Reuse(ctx, d); err != nil {
			return fmt.Errorf("reuse blob %s: %w", d, err)
		}
	}
	var size int64
	if present {
		var err error
		size, err = s.blobs.Stat(ctx, d)
		if errors.Is(err, blobstore.ErrNotFound) {
			present = false
		} else if err != nil {
			return fmt.Errorf("stat blob %s: %w", d, err)
		}
	}
	if !present {
		if err := s.endSession(ctx, u.Repo, u.ID); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return err
		}
		// What is left of the upload (on S3, a multipart upload whose part
		// a writer that had lost its claim replaced) is litter now.
		if err := s.blobs.CancelUpload(ctx, u.ID, u.StoreState); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
			s.log.WarnContext(ctx, "upload bytes not removed", "upload", u.ID, "err", err)
		}
		return uploadUnknown(u.ID)
	}
	if size != u.Offset {
		// The digests matched, so this is a damaged store, not a client error.
		return fmt.Errorf("blob %s holds %d bytes, but upload %s has %d", d, size, u.ID, u.Offset)
	}
	s.log.InfoContext(ctx, "upload finished from its committed blob", "repo", u.Repo, "upload", u.ID, "digest", d)
	return nil
}

// purgeOrphanUploads removes the upload files written before cutoff that
// no session owns: a crash between creating the file and recording its
// session, or between ending a session and removing its file, leaves one,
// and so does a monolithic push (which has no session) cut off by a
// crash. A file whose session exists is the session purge's business;
// a younger file may belong to a push under way, whose session is about
// to be recorded or which streams without one.
func (s *Service) purgeOrphanUploads(ctx context.Context, cutoff time.Time) (int, error) {
	if sw, ok := s.blobs.(blobstore.UploadSweeper); ok {
		return s.sweepUploadObjects(ctx, sw, cutoff)
	}
	w, ok := s.blobs.(blobstore.UploadWalker)
	if !ok {
		return 0, nil
	}
	removed := 0
	err := w.WalkUploads(ctx, func(id string, written time.Time) error {
		if !written.Before(cutoff) {
			return nil
		}
		owned, err := s.meta.UploadExists(ctx, id)
		if err != nil || owned {
			return err
		}
		// No session, so no recorded state: only stores that keep their
		// own upload progress (and so can walk it) get here.
		if err := s.blobs.CancelUpload(ctx, id, nil); err != nil {
			if errors.Is(err, blobstore.ErrNotFound) {
				return nil // gone meanwhile
			}
			return fmt.Errorf("discard orphan upload %s: %w", id, err)
		}
		removed++
		s.log.InfoContext(ctx, "orphan upload removed", "upload", id, "written", written)
		return nil
	})
	return removed, err
}
