package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

var _ blobstore.BlobCreator = (*Store)(nil)

// CreateBlob returns a writer that sends blob d's bytes to the blob's own
// key, so that committing them needs no copy: a blob smaller than one part
// goes up in one PUT at Commit, from memory; a larger one as a multipart
// upload at the key, whose parts S3 keeps out of sight until Commit
// completes it. Abort aborts it. One that is neither committed nor aborted
// (its process died) is litter that WalkUploadObjects lists, under the
// blob's key, for the janitor.
func (s *Store) CreateBlob(ctx context.Context, d digest.Digest) (blobstore.BlobWriter, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &blobWriter{s: s, ctx: ctx, d: d, key: key, buf: s.parts.get()}, nil
}

// blobWriter is CreateBlob's writer; like UploadWriter it holds at most
// one part in memory.
type blobWriter struct {
	s     *Store
	ctx   context.Context
	d     digest.Digest
	key   string
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
	written := 0
	size := int(w.s.parts.size)
	for len(p) > 0 {
		b := *w.buf
		n := copy(b[len(b):size], p)
		*w.buf = b[:len(b)+n]
		p = p[n:]
		written += n
		if len(*w.buf) == size {
			if w.err = w.sendPart(); w.err != nil {
				return written, w.err
			}
		}
	}
	return written, nil
}

// sendPart sends the buffer as the next part, starting the multipart
// upload with the first.
func (w *blobWriter) sendPart() error {
	ctx, bucket := w.ctx, w.s.cfg.Bucket
	if len(w.parts) == maxParts {
		return fmt.Errorf("blobstore/s3: blob %s reached S3's %d parts; raise the part size", w.d, maxParts)
	}
	if w.mpu == "" {
		mpu, err := retryDirRace(ctx, func() (string, error) {
			return w.s.core.NewMultipartUpload(ctx, bucket, w.key, minio.PutObjectOptions{})
		})
		if err != nil {
			return ctxOr(ctx, fmt.Errorf("blobstore/s3: start multipart upload of blob %s: %w", w.d, err))
		}
		w.mpu = mpu
	}
	n := len(w.parts) + 1
	b := *w.buf
	p, err := retryDirRace(ctx, func() (minio.ObjectPart, error) {
		return w.s.core.PutObjectPart(ctx, bucket, w.key, w.mpu, n, bytes.NewReader(b), int64(len(b)), minio.PutObjectPartOptions{})
	})
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: blob %s part %d: %w", w.d, n, err))
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
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
	if _, err := w.s.Stat(ctx, w.d); err == nil {
		w.Abort()
		return nil
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		w.Abort()
		return err
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
