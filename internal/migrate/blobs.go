package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// progressEvery is how many blobs pass between progress lines, and
// bigBlob the size from which a blob gets a line of its own: silence
// during a long copy would look like a hang.
const (
	progressEvery = 1000
	bigBlob       = 64 << 20
)

// blobJobs is how many blobs are copied at once: an object store answers
// each request after a round trip, and copies one after another would
// spend most of their time waiting for those.
const blobJobs = 8

// blobs copies every linked blob the destination lacks, in digest order,
// blobJobs at a time. Blobs come before records, so that no record at the
// destination ever names bytes that are not there yet.
func (m *migration) blobs(ctx context.Context) error {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobJobs)
	var after digest.Digest
	seen := 0
	for gctx.Err() == nil {
		page, err := m.srcBulk.LinkedBlobs(gctx, after, blobPage)
		if err != nil {
			g.Go(func() error { return fmt.Errorf("list the source's blobs: %w", err) })
			break
		}
		if len(page) == 0 {
			break
		}
		for _, b := range page {
			g.Go(func() error { return m.blob(gctx, b) })
			if seen++; seen%progressEvery == 0 {
				m.mu.Lock()
				m.progress("blobs: %d so far, %d copied (%s), %d already present", seen, m.rep.BlobsCopied, Size(m.rep.BytesCopied), m.rep.BlobsPresent)
				m.mu.Unlock()
			}
		}
		after = page[len(page)-1].Digest
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	line := fmt.Sprintf("blobs: %d copied (%s), %d already present (%s)", m.rep.BlobsCopied, Size(m.rep.BytesCopied), m.rep.BlobsPresent, Size(m.rep.BytesPresent))
	if m.opts.Verify {
		line += fmt.Sprintf("; verify: %d re-hashed at the destination (%s), %d copied again", m.rep.BlobsVerified, Size(m.rep.BytesVerified), m.rep.BlobsRepaired)
	}
	m.progress("%s (%s)", line, time.Since(start).Round(time.Millisecond))
	return nil
}

// count updates the report from a blob job.
func (m *migration) count(f func(r *Report)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.rep)
}

// blob brings b to the destination unless it is there with its size, and
// with Verify re-hashes it there.
func (m *migration) blob(ctx context.Context, b metadata.BlobRef) error {
	size, err := m.dst.Blobs.Stat(ctx, b.Digest)
	switch {
	case err == nil && size == b.Size:
		m.count(func(r *Report) { r.BlobsPresent++; r.BytesPresent += size })
	case err == nil:
		m.say("blob %s at the destination has %d bytes, not %d: copying it again", b.Digest, size, b.Size)
		if !m.replace(ctx, b) {
			return ctx.Err()
		}
	case errors.Is(err, blobstore.ErrNotFound):
		copied, err := m.copyBlob(ctx, b)
		if err != nil {
			return err
		}
		if !copied {
			return nil // a problem with the source, reported
		}
	default:
		return fmt.Errorf("blob %s at the destination: %w", b.Digest, err)
	}
	if !m.opts.Verify {
		return nil
	}
	got, n, err := hashBlob(ctx, m.dst.Blobs, b.Digest)
	if err != nil {
		return fmt.Errorf("verify blob %s at the destination: %w", b.Digest, err)
	}
	if got == b.Digest && n == b.Size {
		m.count(func(r *Report) { r.BlobsVerified++; r.BytesVerified += n })
		return nil
	}
	m.say("verify: blob %s at the destination is corrupt (its %d bytes have digest %s): copying it again from the source", b.Digest, n, got)
	if !m.replace(ctx, b) {
		return ctx.Err()
	}
	got, n, err = hashBlob(ctx, m.dst.Blobs, b.Digest)
	if err != nil {
		return fmt.Errorf("verify blob %s at the destination: %w", b.Digest, err)
	}
	if got != b.Digest || n != b.Size {
		m.problem("verify: blob %s at the destination is still corrupt after copying it again (%d bytes, digest %s)", b.Digest, n, got)
		return nil
	}
	m.count(func(r *Report) { r.BlobsVerified++; r.BytesVerified += n })
	return nil
}

// replace deletes the destination's wrong copy of b and copies it again;
// it reports whether b is now there. Blobs are immutable to the store
// (a commit over an existing blob keeps the old bytes), hence the delete.
func (m *migration) replace(ctx context.Context, b metadata.BlobRef) bool {
	if err := m.dst.Blobs.Delete(ctx, b.Digest); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		m.problem("blob %s: cannot delete the destination's wrong copy: %v", b.Digest, err)
		return false
	}
	copied, err := m.copyBlob(ctx, b)
	if err != nil {
		m.problem("blob %s: copying it again: %v", b.Digest, err)
		return false
	}
	if copied {
		m.count(func(r *Report) { r.BlobsRepaired++ })
	}
	return copied
}

// copyAttempts bounds the tries of one blob copy. Object stores fail a
// request now and then (S3's SlowDown; versitygw's posix backend, under
// concurrent uploads, an occasional "Existing Object is a directory"), and
// one such answer should not stop a long migration: a copy starts over
// from the source, so a retry is safe.
const copyAttempts = 3

// copyBlob streams blob b from the source into the destination, hashing
// it on the way; the destination commits it only if the digest and size
// match. It reports false (and a problem) when the source's copy is
// missing or corrupt, an error when a store fails copyAttempts times.
func (m *migration) copyBlob(ctx context.Context, b metadata.BlobRef) (bool, error) {
	for attempt := 1; ; attempt++ {
		copied, err := m.copyOnce(ctx, b)
		if err == nil || attempt == copyAttempts || ctx.Err() != nil {
			return copied, err
		}
		m.say("%v; trying again (%d of %d)", err, attempt+1, copyAttempts)
	}
}

func (m *migration) copyOnce(ctx context.Context, b metadata.BlobRef) (bool, error) {
	r, size, err := m.openSource(ctx, b.Digest)
	if errors.Is(err, blobstore.ErrNotFound) {
		m.problem("blob %s is linked but missing from the source's blob store; not copied", b.Digest)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open blob %s at the source: %w", b.Digest, err)
	}
	defer r.Close()
	if size != b.Size {
		m.problem("blob %s has %d bytes at the source, not the %d its links record; not copied", b.Digest, size, b.Size)
		return false, nil
	}
	if size >= bigBlob {
		m.say("blob %s: copying %s", b.Digest, Size(size))
	}
	if !b.Digest.Algorithm().Available() {
		m.problem("blob %s: unsupported digest algorithm; not copied", b.Digest)
		return false, nil
	}

	id := "migrate-" + uuid.NewString()
	state, err := m.dst.Blobs.StartUpload(ctx, id)
	if err != nil {
		return false, fmt.Errorf("start writing blob %s at the destination: %w", b.Digest, err)
	}
	committed := false
	defer func() {
		if !committed {
			// Also after a cancelled context: no bytes left behind.
			_ = m.dst.Blobs.CancelUpload(context.WithoutCancel(ctx), id, state)
		}
	}()
	w, err := m.dst.Blobs.WriteUpload(ctx, id, 0, state)
	if err != nil {
		return false, fmt.Errorf("write blob %s at the destination: %w", b.Digest, err)
	}
	v := b.Digest.Verifier()
	// One byte more than the size, to notice a source that grew.
	n, err := io.Copy(w, io.TeeReader(io.LimitReader(r, size+1), v))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("copy blob %s: %w", b.Digest, err)
	}
	state = w.State()
	if n != size || !v.Verified() {
		m.problem("blob %s is corrupt at the source (%d bytes that do not match the digest); not copied", b.Digest, n)
		return false, nil
	}
	if err := m.dst.Blobs.CommitUpload(ctx, id, state, b.Digest, n); err != nil {
		return false, fmt.Errorf("commit blob %s at the destination: %w", b.Digest, err)
	}
	committed = true
	m.count(func(r *Report) { r.BlobsCopied++; r.BytesCopied += n })
	return true, nil
}

// openSource opens blob d at the source: in its blob store, or in its
// metadata record if the source kept it there (a small blob, see
// metadata.SmallBlobs). The destination gets every blob in its blob store,
// where reads find them whatever its own limit for small blobs.
func (m *migration) openSource(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	r, size, err := m.src.Blobs.Open(ctx, d)
	if !errors.Is(err, blobstore.ErrNotFound) {
		return r, size, err
	}
	small, ok := m.src.Meta.(metadata.SmallBlobs)
	if !ok {
		return nil, 0, err
	}
	b, serr := small.SmallBlob(ctx, d)
	if errors.Is(serr, metadata.ErrNotFound) {
		return nil, 0, err
	}
	if serr != nil {
		return nil, 0, serr
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

// hashBlob reads blob d of s through its digest's hash and returns the
// digest of what it read and how many bytes.
func hashBlob(ctx context.Context, s blobstore.Store, d digest.Digest) (digest.Digest, int64, error) {
	r, _, err := s.Open(ctx, d)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	dg := d.Algorithm().Digester()
	n, err := io.Copy(dg.Hash(), r)
	if err != nil {
		return "", n, err
	}
	return dg.Digest(), n, nil
}
