package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// Upload is the state of an upload session as callers see it.
type Upload struct {
	ID     string
	Repo   string
	Offset int64
}

// StartUpload opens an upload session in repo whose bytes are hashed with
// alg (sha256 when empty).
func (s *Service) StartUpload(ctx context.Context, repo string, alg digest.Algorithm) (*Upload, error) {
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	if alg == "" {
		alg = digest.Canonical
	}
	if err := s.enforceQuota(ctx, repo, "", 0, false); err != nil {
		return nil, err
	}
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	if s.ids != nil {
		// Nothing to record yet: the id says what the row would say
		// (uploadids.go), and the first write makes the rest.
		return &Upload{ID: s.ids.issue(repo, alg, s.opts.Now()), Repo: repo}, nil
	}
	state, err := marshalHash(h)
	if err != nil {
		return nil, err
	}
	id := uuid.NewString()
	stored, err := s.blobs.StartUpload(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("start upload: %w", err)
	}
	t := s.opts.Now()
	u := &metadata.Upload{ID: id, Repo: repo, Algorithm: alg, HashState: state, StoreState: stored, StartedAt: t, UpdatedAt: t}
	if err := s.meta.CreateUpload(ctx, u); err != nil {
		_ = s.blobs.CancelUpload(ctx, id, stored)
		return nil, err
	}
	return &Upload{ID: id, Repo: repo}, nil
}

// UploadStatus returns the session's state.
func (s *Service) UploadStatus(ctx context.Context, repo, id string) (*Upload, error) {
	u, err := s.getUpload(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	return &Upload{ID: u.ID, Repo: u.Repo, Offset: u.Offset}, nil
}

// WriteUpload appends a chunk to the session. start is where the caller
// says the chunk begins (-1 when it did not say) and length its declared
// size (-1 when unknown). A chunk that does not begin at the session's
// offset is ErrRangeInvalid, carrying the offset.
func (s *Service) WriteUpload(ctx context.Context, repo, id string, start int64, r io.Reader, length int64) (*Upload, error) {
	defer s.pushes.begin()()
	u, unlock, err := s.lockUpload(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if start >= 0 && start != u.Offset {
		e := Errorf(ErrRangeInvalid, "chunk starts at %d but the upload has %d bytes", start, u.Offset)
		e.Offset = u.Offset
		return nil, e
	}
	if err := s.enforceQuota(ctx, repo, "", declared(u.Offset, length), false); err != nil {
		return nil, err
	}
	lease, err := s.claimUpload(ctx, u)
	if err != nil {
		return nil, err
	}
	if err := s.appendChunk(ctx, u, lease, r, length); err != nil {
		return nil, err
	}
	return &Upload{ID: u.ID, Repo: u.Repo, Offset: u.Offset}, nil
}

// CompleteUpload appends an optional last chunk (r may be nil), checks the
// bytes against d, and commits the blob into repo. It returns the size.
func (s *Service) CompleteUpload(ctx context.Context, repo, id string, d digest.Digest, r io.Reader, length int64) (int64, error) {
	defer s.pushes.begin()()
	u, unlock, err := s.lockUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if r != nil && length > 0 {
		if err := s.enforceQuota(ctx, repo, d, declared(u.Offset, length), false); err != nil {
			return 0, err
		}
	}
	// The commit writes to the upload too (S3 adds the tail as a part),
	// so it needs the claim as much as a chunk does. The claim ends with
	// the session; a failure releases it.
	lease, err := s.claimUpload(ctx, u)
	if err != nil {
		return 0, err
	}
	finished := false
	defer func() {
		if !finished {
			lease.release(ctx)
		}
	}()
	kept, err := s.completeInRecord(ctx, u, lease, d, r, length)
	if err != nil {
		return 0, err
	}
	if kept {
		finished = true // ending the session ended the claim
		s.log.InfoContext(ctx, "blob committed", "repo", repo, "digest", d, "bytes", u.Offset, "kept", "metadata")
		return u.Offset, nil
	}
	if bc := s.blobCreator(); bc != nil && u.Offset == 0 && r != nil && length != 0 {
		// The whole blob is in this request (POST, then PUT with the body).
		err = s.completeDirect(ctx, bc, u, lease, d, r, length)
	} else {
		err = s.completeFromUpload(ctx, u, lease, d, r, length)
	}
	if err != nil {
		return 0, err
	}
	if _, started, ok := s.ids.verify(repo, id); ok {
		if err := s.ended.FinishEndedUpload(ctx, repo, id, started, d, u.Offset); err != nil {
			return 0, err
		}
	} else if f, ok := s.meta.(uploadFinisher); ok {
		if err := f.FinishUpload(ctx, repo, id, d, u.Offset); err != nil {
			return 0, err
		}
	} else {
		if err := s.meta.LinkBlob(ctx, repo, d, u.Offset); err != nil {
			return 0, err
		}
		if err := s.meta.DeleteUpload(ctx, repo, id); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return 0, err
		}
	}
	finished = true // ending the session ended the claim
	s.log.InfoContext(ctx, "blob committed", "repo", repo, "digest", d, "bytes", u.Offset)
	return u.Offset, nil
}

// completeFromUpload appends the optional last chunk to session u's bytes
// and commits them as blob d.
func (s *Service) completeFromUpload(ctx context.Context, u *metadata.Upload, lease *uploadLease, d digest.Digest, r io.Reader, length int64) error {
	from := u.Offset
	if unrecorded(u) {
		if err := s.startStored(ctx, u); err != nil {
			return err
		}
	}
	if r != nil && length != 0 {
		// The last chunk is hashed into u in memory only: the session either
		// ends here or, if the digest is wrong, stays where it was recorded
		// (its next write at that offset drops these bytes).
		err := s.appendInMemory(ctx, u, lease, r, length)
		if errors.Is(err, blobstore.ErrNotFound) {
			// Committed by an earlier attempt (uploadcrash.go).
			err = s.hashWithoutStoring(u, r, length)
		}
		if errors.Is(err, errLeaseLost) {
			return s.writtenElsewhere(ctx, u)
		}
		if err != nil {
			return err
		}
	}
	return s.commitUpload(ctx, u, lease, d, from)
}

// commitUpload checks session u's bytes against d and moves them into
// place as blob d, renewing the claim meanwhile: for a large blob in a
// bucket, the read-back and the copy may take longer than the claim.
func (s *Service) commitUpload(ctx context.Context, u *metadata.Upload, lease *uploadLease, d digest.Digest, from int64) error {
	stop := lease.keepAlive(ctx)
	defer stop()
	got, err := s.uploadDigest(ctx, u, lease, d.Algorithm(), from)
	if err != nil {
		return err
	}
	if got != d {
		return digestMismatch(d, got)
	}
	if err := s.keepBlob(ctx, d, u.Offset); err != nil {
		return err
	}
	if err := s.blobs.CommitUpload(ctx, u.ID, u.StoreState, d, u.Offset); errors.Is(err, blobstore.ErrNotFound) {
		return s.adoptCommitted(ctx, u, d)
	} else if err != nil {
		return fmt.Errorf("commit blob %s: %w", d, err)
	}
	return nil
}

// uploadFinisher is an optional metadata.Store capability: LinkBlob and
// DeleteUpload in one write transaction (sqldb), so that each finished
// upload costs one commit.
type uploadFinisher interface {
	FinishUpload(ctx context.Context, repo, id string, d digest.Digest, size int64) error
}

// PutBlob uploads a whole blob in one call (a monolithic push).
func (s *Service) PutBlob(ctx context.Context, repo string, d digest.Digest, r io.Reader, length int64) (int64, error) {
	defer s.pushes.begin()()
	if err := ValidateName(repo); err != nil {
		return 0, err
	}
	if err := s.enforceQuota(ctx, repo, d, declared(0, length), false); err != nil {
		return 0, err
	}
	if s.isSmall(length) {
		return s.putSmall(ctx, repo, d, r, length)
	}
	if bc := s.blobCreator(); bc != nil {
		n, err := s.createBlob(ctx, bc, d, r, length, nil)
		if err != nil {
			return 0, err
		}
		return n, s.linkPut(ctx, repo, d, n)
	}
	h, err := newHash(d.Algorithm())
	if err != nil {
		return 0, err
	}
	// One request carries the whole blob, so nothing needs to resume it:
	// skip the session row and write straight to an upload area.
	id := uuid.NewString()
	stored, err := s.blobs.StartUpload(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("start upload: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = s.blobs.CancelUpload(context.WithoutCancel(ctx), id, stored)
		}
	}()
	n, written, err := s.writeHashed(ctx, id, 0, stored, h, r, length, nil)
	if err != nil {
		return 0, err
	}
	stored = written
	if err := checkDigest(d, h); err != nil {
		return 0, err
	}
	if err := s.keepBlob(ctx, d, n); err != nil {
		return 0, err
	}
	if err := s.blobs.CommitUpload(ctx, id, stored, d, n); err != nil {
		return 0, fmt.Errorf("commit blob %s: %w", d, err)
	}
	committed = true
	return n, s.linkPut(ctx, repo, d, n)
}

// linkPut links blob d, just stored by a monolithic push, into repo.
func (s *Service) linkPut(ctx context.Context, repo string, d digest.Digest, n int64) error {
	if err := s.meta.LinkBlob(ctx, repo, d, n); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "blob committed", "repo", repo, "digest", d, "bytes", n)
	return nil
}

// CancelUpload ends the session and discards its bytes.
func (s *Service) CancelUpload(ctx context.Context, repo, id string) error {
	u, unlock, err := s.lockUpload(ctx, repo, id)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.endSession(ctx, repo, id); err != nil {
		if errors.Is(err, metadata.ErrNotFound) {
			return uploadUnknown(id)
		}
		return err
	}
	if unrecorded(u) || u.Content != nil && !s.storedAtPost(u) {
		// Its first write, which makes the store's upload, never came, or
		// its record kept the bytes and its first write made none.
		return nil
	}
	if err := s.blobs.CancelUpload(ctx, id, u.StoreState); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		return fmt.Errorf("discard upload %s: %w", id, err)
	}
	return nil
}

func (s *Service) getUpload(ctx context.Context, repo, id string) (*metadata.Upload, error) {
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	if !validUploadID(id) {
		// Not echoed back: the id may be kilobytes of anything.
		return nil, Errorf(ErrUploadUnknown, "no upload has an id like that (ids are at most %d letters, digits, - and _)", maxUploadIDLen)
	}
	u, err := s.meta.GetUpload(ctx, repo, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return s.unrecordedUpload(ctx, repo, id)
	}
	return u, err
}

// copyBuffers keeps large buffers for streaming chunks; big reads and writes
// matter more than anything else for upload throughput.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// appendChunk streams r into the upload, hashing as it writes, and records
// the new offset, hash state and store state, in one write that also ends
// the claim. On any failure the session is unchanged and the claim
// released: the next write at the same offset, from the recorded store
// state, discards the partial bytes.
func (s *Service) appendChunk(ctx context.Context, u *metadata.Upload, lease *uploadLease, r io.Reader, length int64) error {
	from := u.Offset
	fresh := unrecorded(u)
	if err := s.appendBytes(ctx, u, lease, r, length, fresh); err != nil {
		lease.release(ctx)
		if errors.Is(err, errLeaseLost) {
			return s.writtenElsewhere(ctx, u)
		}
		if errors.Is(err, blobstore.ErrNotFound) {
			// The session's bytes are gone (committed by an attempt whose
			// record a crash lost, or removed by the janitor): it cannot
			// go on, and the client restarts the blob as the spec's
			// BLOB_UPLOAD_UNKNOWN tells it to.
			return uploadUnknown(u.ID)
		}
		return err
	}
	u.UpdatedAt = s.opts.Now()
	record := func() error { return s.meta.AdvanceUpload(ctx, u, from) }
	if fresh {
		// The session's first record, which its POST left to this write.
		record = func() error { return s.meta.CreateUpload(ctx, u) }
	}
	if err := record(); err != nil {
		lease.release(ctx)
		if errors.Is(err, metadata.ErrConflict) {
			return s.writtenElsewhere(ctx, u)
		}
		if errors.Is(err, metadata.ErrNotFound) {
			return uploadUnknown(u.ID)
		}
		return err
	}
	return nil
}

// appendBytes adds a chunk to session u's bytes, advancing u in memory
// only: the first chunk of a session goes into u.Content when it is small
// (smallblobs.go), any other to the blob store, with the bytes a record
// kept moved there first. A fresh session's store upload starts here; one
// recorded at its POST started there. (A signed session whose first write
// was empty started its store upload then, and keeps using it.)
func (s *Service) appendBytes(ctx context.Context, u *metadata.Upload, lease *uploadLease, r io.Reader, length int64, fresh bool) error {
	if fresh || u.Offset == 0 && u.Content == nil && s.storedAtPost(u) {
		content, rest, err := s.peekSmall(r, length)
		if err != nil {
			return err
		}
		if content != nil {
			return keepInRecord(u, content)
		}
		r = rest
		if fresh {
			if err := s.startStored(ctx, u); err != nil {
				return err
			}
		}
	} else if u.Content != nil {
		if err := s.moveToStore(ctx, u); err != nil {
			return err
		}
	}
	return s.appendInMemory(ctx, u, lease, r, length)
}

// appendInMemory writes a chunk to the session's bytes, under lease, and
// advances u's offset, hash state and store state without recording them.
func (s *Service) appendInMemory(ctx context.Context, u *metadata.Upload, lease *uploadLease, r io.Reader, length int64) error {
	h, err := restoreHash(u.Algorithm, u.HashState)
	if err != nil {
		return err
	}
	n, stored, err := s.writeHashed(ctx, u.ID, u.Offset, u.StoreState, h, r, length, lease)
	if err != nil {
		return err
	}
	state, err := marshalHash(h)
	if err != nil {
		return err
	}
	u.Offset += n
	u.HashState = state
	u.StoreState = stored
	return nil
}

// writeHashed streams r (length bytes, or to EOF when length < 0) into
// upload id at offset, from store state stored, through h. It returns the
// bytes written and the store state to record with the new offset. Under
// a lease (nil: none needed) it renews the claim as the body arrives and
// stops, storing nothing more, with errLeaseLost once the claim is lost.
func (s *Service) writeHashed(ctx context.Context, id string, offset int64, stored blobstore.State, h hash.Hash, r io.Reader, length int64, lease *uploadLease) (int64, blobstore.State, error) {
	w, err := s.blobs.WriteUpload(ctx, id, offset, stored)
	if err != nil {
		return 0, nil, fmt.Errorf("open upload %s: %w", id, err)
	}
	if lh, ok := w.(blobstore.LengthHinter); ok && length >= 0 {
		lh.WillWrite(length)
	}
	n, readErr, writeErr := leasedCopy(ctx, w, h, r, length, lease)
	if err := lease.err(); err != nil {
		abortUpload(w)
		return 0, nil, err
	}
	if err := errors.Join(writeErr, w.Close()); err != nil {
		return 0, nil, fmt.Errorf("write upload %s: %w", id, err)
	}
	if err := bodyErr(n, length, readErr); err != nil {
		return 0, nil, err
	}
	return n, w.State(), nil
}

// leasedCopy streams r (length bytes, or to EOF when length < 0) to w
// through h and returns the bytes read, with the client's error (reading)
// apart from ours (writing). Under a lease (nil: none needed) it renews
// the claim as the body arrives and stops, writing nothing more, once the
// claim is lost: lease.err() then says so.
func leasedCopy(ctx context.Context, w io.Writer, h hash.Hash, r io.Reader, length int64, lease *uploadLease) (n int64, readErr, writeErr error) {
	src := r
	if length >= 0 {
		src = io.LimitReader(r, length)
	}
	dst := w
	var lr *leasedReader
	if lease != nil {
		lr = &leasedReader{r: src, ctx: ctx, lease: lease}
		src, dst = lr, &leasedWriter{w: w, ctx: ctx, lease: lease}
	}
	n, readErr, writeErr = HashCopy(dst, h, src)
	if lr != nil && lr.err != nil {
		// Renewing the claim failed, not the client.
		readErr, writeErr = nil, errors.Join(writeErr, lr.err)
	}
	if writeErr == nil && readErr == nil {
		// The caller stores the last bytes next: check the claim once more.
		writeErr = lease.keep(ctx)
	}
	return n, readErr, writeErr
}

// bodyErr is the client's error in a body of n bytes that was declared to
// have length (-1: not declared) and whose reading ended with readErr.
func bodyErr(n, length int64, readErr error) error {
	if readErr != nil {
		return Errorf(ErrUploadInvalid, "reading the chunk failed after %d bytes: %v", n, readErr)
	}
	if length >= 0 && n != length {
		return Errorf(ErrSizeInvalid, "chunk declared %d bytes but carried %d", length, n)
	}
	return nil
}

// checkDigest reports whether the bytes hashed into h have digest d.
func checkDigest(d digest.Digest, h hash.Hash) error {
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return digestMismatch(d, got)
	}
	return nil
}

func digestMismatch(want, got digest.Digest) error {
	return Errorf(ErrDigestInvalid, "uploaded content has digest %s, not %s", got, want).
		withDetail(map[string]any{"expected": want.String(), "actual": got.String()})
}

// uploadDigest returns the digest of the upload's bytes with alg, from the
// saved hash state when the session used alg, else by reading them again.
// A store that had to change the upload to read it back (S3 completes its
// multipart upload) gets its new state recorded with the session, which
// was recorded at offset from, so that a retried or failed commit finds
// the upload as it now is.
func (s *Service) uploadDigest(ctx context.Context, u *metadata.Upload, lease *uploadLease, alg digest.Algorithm, from int64) (digest.Digest, error) {
	if alg == u.Algorithm {
		h, err := restoreHash(u.Algorithm, u.HashState)
		if err != nil {
			return "", err
		}
		return digest.NewDigest(alg, h), nil
	}
	// The session guessed the algorithm wrong (clients do not announce it
	// before the final PUT): hash the stored bytes again with the right one.
	h, err := newHash(alg)
	if err != nil {
		return "", err
	}
	rc, stored, err := s.blobs.ReadUpload(ctx, u.ID, u.StoreState)
	if errors.Is(err, blobstore.ErrNotFound) {
		// The bytes the session recorded are gone (or were replaced by a
		// writer that had lost its claim): it can never finish.
		if err := s.endSession(ctx, u.Repo, u.ID); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return "", err
		}
		return "", uploadUnknown(u.ID)
	}
	if err != nil {
		return "", fmt.Errorf("read upload %s: %w", u.ID, err)
	}
	defer rc.Close()
	if !bytes.Equal(stored, u.StoreState) {
		u.StoreState = stored
		u.UpdatedAt = s.opts.Now()
		if err := s.meta.AdvanceUpload(ctx, u, from); err != nil {
			if errors.Is(err, metadata.ErrConflict) {
				return "", s.writtenElsewhere(ctx, u)
			}
			return "", err
		}
		// The advance ended the claim; the commit still needs it.
		if err := lease.reclaim(ctx); err != nil {
			return "", err
		}
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	n, err := io.CopyBuffer(h, io.LimitReader(rc, u.Offset), *bp)
	if err != nil {
		return "", fmt.Errorf("read upload %s: %w", u.ID, err)
	}
	if n != u.Offset {
		return "", fmt.Errorf("upload %s holds %d bytes, expected %d", u.ID, n, u.Offset)
	}
	return digest.NewDigest(alg, h), nil
}

// lockUpload takes the writer lock of session id of repo and returns the
// session as it is under that lock. The session is looked up before the
// lock too, so that an id which is not a live session of repo never gets
// an entry in the lock map: anyone may send any id.
func (s *Service) lockUpload(ctx context.Context, repo, id string) (*metadata.Upload, func(), error) {
	if _, err := s.getUpload(ctx, repo, id); err != nil {
		return nil, nil, err
	}
	unlock := s.uploadLocks.lock(id)
	// Read again: a writer that held the lock may have moved the session.
	u, err := s.getUpload(ctx, repo, id)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return u, unlock, nil
}

func newHash(alg digest.Algorithm) (hash.Hash, error) {
	switch alg {
	case digest.SHA256:
		return sha256.New(), nil
	case digest.SHA512:
		return sha512.New(), nil
	default:
		return nil, Errorf(ErrDigestInvalid, "digest algorithm %q is not supported (use sha256 or sha512)", alg)
	}
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("hash state cannot be saved")
	}
	return m.MarshalBinary()
}

// restoreHash returns the hash with state, or a new one for a nil state
// (an unrecorded session, which has hashed nothing yet).
func restoreHash(alg digest.Algorithm, state []byte) (hash.Hash, error) {
	h, err := newHash(alg)
	if err != nil || state == nil {
		return h, err
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore hash state: %w", err)
	}
	return h, nil
}

func uploadUnknown(id string) error {
	return Errorf(ErrUploadUnknown, "upload %s not found", id).withDetail(map[string]any{"uuid": id})
}

// PurgeStaleUploads discards sessions not written for maxAge, and upload
// files not written for maxAge that no session owns (a crash left them),
// so abandoned pushes do not fill the disk. It returns how many it removed.
func (s *Service) PurgeStaleUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	removed := 0
	cutoff := s.opts.Now().Add(-maxAge)
	for {
		stale, err := s.meta.StaleUploads(ctx, cutoff, 100)
		if err != nil {
			return removed, err
		}
		for _, u := range stale {
			if err := s.CancelUpload(ctx, u.Repo, u.ID); err != nil && !errors.Is(err, ErrUploadUnknown) {
				return removed, err
			}
			removed++
		}
		if len(stale) < 100 {
			n, err := s.purgeOrphanUploads(ctx, cutoff)
			if err != nil {
				return removed + n, err
			}
			// Records, not uploads: not counted as removed.
			_, err = s.forgetEndedUploads(ctx, cutoff)
			return removed + n, err
		}
	}
}
