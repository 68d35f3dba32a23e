package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// blobReader reads a committed blob of known size: each Read continues one
// ranged GET from the current offset, opened on the first Read after a
// Seek. It reads the response body directly: minio-go's Object hands every
// Read to a goroutine of its own over channels, which with the 32 KiB
// reads of http.ServeContent halved a blob GET's throughput.
type blobReader struct {
	core        minio.Core
	ctx         context.Context
	bucket, key string
	size, off   int64
	body        io.ReadCloser // nil until the first Read after a Seek
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		var opts minio.GetObjectOptions
		if err := opts.SetRange(r.off, r.size-1); err != nil {
			return 0, err
		}
		body, _, _, err := r.core.GetObject(r.ctx, r.bucket, r.key, opts)
		if err != nil {
			return 0, ctxOr(r.ctx, notFound(err))
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && r.off < r.size {
		err = fmt.Errorf("blobstore/s3: %s ended at %d of %d bytes: %w", r.key, r.off, r.size, io.ErrUnexpectedEOF)
	} else if errors.Is(err, io.EOF) {
		err = nil // the next Read says EOF, once the offset says so
	}
	return n, ctxOr(r.ctx, err)
}

func (r *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return r.off, fmt.Errorf("blobstore/s3: seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return r.off, errors.New("blobstore/s3: seek before the start")
	}
	if offset != r.off && r.body != nil {
		// A seek ends the current range; the next Read opens another.
		r.body.Close()
		r.body = nil
	}
	r.off = offset
	return offset, nil
}

func (r *blobReader) Close() error {
	if r.body == nil {
		return nil
	}
	err := r.body.Close()
	r.body = nil
	return err
}
