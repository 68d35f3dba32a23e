package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

var _ blobstore.BlobCreator = (*Store)(nil)

// maxPutSize is the largest object one PUT may store.
const maxPutSize = 5 << 30

// CreateBlob returns a writer that sends blob d's bytes to the blob's own
// key, so that committing them needs no copy. A sha256 blob of known size
// (up to S3's 5 GiB for one PUT) streams as the body of one PUT while it
// is written (streamWriter); any other goes up in parts (blobWriter).
func (s *Store) CreateBlob(ctx context.Context, d digest.Digest, size int64) (blobstore.BlobWriter, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.Algorithm() == digest.SHA256 && size > 0 && size <= maxPutSize {
		return s.streamBlob(ctx, d, key, size), nil
	}
	return &blobWriter{s: s, ctx: ctx, d: d, key: key, size: size, buf: s.parts.get()}, nil
}

// blobWriter writes a blob in parts, holding at most one in memory, as
// UploadWriter does: a blob smaller than one part goes up in one PUT at
// Commit; a larger one as a multipart upload at the blob's key, whose
// parts S3 keeps out of sight until Commit completes it. Abort aborts it.
// One that is neither committed nor aborted (its process died) is litter
// that WalkUploadObjects lists, under the blob's key, for the janitor.
type blobWriter struct {
	s     *Store
	ctx   context.Context
	d     digest.Digest
	key   string
	size  int64   // -1: not known
	n     int64   // bytes written
	buf   *[]byte // len = bytes waiting for the next part
	mpu   string  // "" until the first whole part
	parts []minio.CompletePart
	err   error
	done  bool // committed or aborted
}

// Write buffers p and sends each whole part as it fills.
func (w *blobWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("blobstore/s3: write to a finished blob writer")
	}
	written, err := fillParts(w.buf, int(w.s.parts.size), p, nil, w.sendPart)
	w.n += int64(written)
	w.err = err
	return written, err
}

// sendPart sends the buffer as the next part, starting the multipart
// upload with the first.
func (w *blobWriter) sendPart() error {
	n := len(w.parts) + 1
	b := *w.buf
	etag, err := w.s.putPart(w.ctx, w.key, &w.mpu, n, b, "blob "+w.d.String())
	if err != nil {
		return err
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n, ETag: etag})
	*w.buf = b[:0]
	return nil
}

// Commit stores the bytes at the blob's key: the buffer in one PUT, or as
// the last part of the multipart upload, which is then completed. A blob
// already at the key (another push of it finished first) is not written
// again.
func (w *blobWriter) Commit(ctx context.Context) error {
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if w.done {
		return errors.New("blobstore/s3: commit of a finished blob writer")
	}
	if err := checkCommit(ctx, w.s, w.d, w.size, w.n); err != nil {
		w.Abort()
		return noneIfStored(err)
	}
	bucket := w.s.cfg.Bucket
	if w.mpu == "" {
		defer w.Abort() // returns the buffer
		b := *w.buf
		_, err := retryDirRace(ctx, func() (minio.UploadInfo, error) {
			return w.s.client.PutObject(ctx, bucket, w.key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{})
		})
		return ctxOr(ctx, err)
	}
	if len(*w.buf) > 0 {
		// S3 lets only the last part be smaller than the others.
		w.ctx = ctx
		if err := w.sendPart(); err != nil {
			w.Abort()
			return err
		}
	}
	_, err := retryDirRace(ctx, func() (minio.UploadInfo, error) {
		return w.s.core.CompleteMultipartUpload(ctx, bucket, w.key, w.mpu, w.parts, minio.PutObjectOptions{})
	})
	if err != nil {
		w.Abort()
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: complete blob %s: %w", w.d, err))
	}
	w.mpu = "" // completed: nothing to abort
	w.Abort()
	return nil
}

// Abort aborts the multipart upload, if one was started, and returns the
// buffer. A failed abort only leaves litter, which the janitor finds, so
// it is logged.
func (w *blobWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.s.parts.put(w.buf)
	w.buf = nil
	if w.mpu == "" {
		return
	}
	ctx := context.WithoutCancel(w.ctx)
	if err := w.s.core.AbortMultipartUpload(ctx, w.s.cfg.Bucket, w.key, w.mpu); err != nil && !errors.Is(notFound(err), blobstore.ErrNotFound) {
		w.s.log.WarnContext(ctx, "blob multipart upload not aborted", "digest", w.d, "err", err)
	}
}

// errStored is checkCommit's answer for a blob that is there already.
var errStored = errors.New("blobstore/s3: blob stored already")

// checkCommit is the check before a writer's commit: exactly the size
// declared (-1: any) was written, and the blob is not stored already
// (errStored), so that it is not written again.
func checkCommit(ctx context.Context, s *Store, d digest.Digest, size, n int64) error {
	if size >= 0 && n != size {
		return fmt.Errorf("blobstore/s3: blob %s: %d bytes written, %d declared", d, n, size)
	}
	if _, err := s.Stat(ctx, d); err == nil {
		return errStored
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return err
	}
	return nil
}

// noneIfStored is nil for errStored: a commit that finds its blob stored
// has nothing to do.
func noneIfStored(err error) error {
	if errors.Is(err, errStored) {
		return nil
	}
	return err
}

// streamWriter sends a blob of known size and sha256 digest as the body
// of one PUT at the blob's key while the bytes are written: nothing is
// held in memory, nothing is written twice. Two guards keep anything
// unverified from showing at the key. The PUT is signed with the digest as
// its payload hash, so S3 itself refuses a body that does not hash to it;
// and the blob's last byte is held back until Commit, so a body that the
// caller rejects, or that is cut off, never completes: Abort ends the PUT
// short of its declared length, which S3 does not store.
type streamWriter struct {
	s    *Store
	ctx  context.Context
	d    digest.Digest
	size int64
	sent int64 // bytes passed to the PUT
	last []byte
	pw   *io.PipeWriter
	// done delivers the PUT's result; stop ends it early.
	done chan error
	stop context.CancelFunc
	err  error
	over bool // committed or aborted
}

func (s *Store) streamBlob(ctx context.Context, d digest.Digest, key string, size int64) *streamWriter {
	pr, pw := io.Pipe()
	pctx, stop := context.WithCancel(ctx)
	w := &streamWriter{s: s, ctx: ctx, d: d, size: size, pw: pw, done: make(chan error, 1), stop: stop}
	// Not retried: the body is read once. A PUT that fails fails the push,
	// which the client retries.
	opts := minio.PutObjectOptions{DisableContentSha256: true}
	go func() {
		_, err := s.core.PutObject(pctx, s.cfg.Bucket, key, pr, size, "", d.Encoded(), opts)
		pr.CloseWithError(err) // a Write waiting on a PUT that ended returns
		w.done <- err
	}()
	return w
}

// Write passes p to the PUT, all but the blob's last byte.
func (w *streamWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.over {
		return 0, errors.New("blobstore/s3: write to a finished blob writer")
	}
	n := len(p)
	if w.sent+int64(len(w.last))+int64(n) > w.size {
		w.err = fmt.Errorf("blobstore/s3: blob %s: more than the %d bytes declared", w.d, w.size)
		return 0, w.err
	}
	if w.sent+int64(n) == w.size {
		// The last byte waits for Commit.
		w.last, p = []byte{p[n-1]}, p[:n-1]
	}
	if _, err := w.pw.Write(p); err != nil {
		w.err = ctxOr(w.ctx, fmt.Errorf("blobstore/s3: put blob %s: %w", w.d, err))
		return 0, w.err
	}
	w.sent += int64(len(p))
	return n, nil
}

// Commit sends the last byte and waits for S3 to store the blob, unless
// it is stored already: then the PUT is ended short, storing nothing.
func (w *streamWriter) Commit(ctx context.Context) error {
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if w.over {
		return errors.New("blobstore/s3: commit of a finished blob writer")
	}
	if err := checkCommit(ctx, w.s, w.d, w.size, w.sent+int64(len(w.last))); err != nil {
		w.Abort()
		return noneIfStored(err)
	}
	w.over = true
	defer w.stop()
	if _, err := w.pw.Write(w.last); err != nil {
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: put blob %s: %w", w.d, <-w.done))
	}
	w.pw.Close()
	if err := <-w.done; err != nil {
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: put blob %s: %w", w.d, err))
	}
	return nil
}

// Abort ends the PUT short of its length, and waits until it has ended.
func (w *streamWriter) Abort() {
	if w.over {
		return
	}
	w.over = true
	w.pw.CloseWithError(errAborted)
	w.stop()
	<-w.done
}
