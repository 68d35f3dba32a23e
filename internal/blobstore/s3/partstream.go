package s3

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/minio/minio-go/v7"
)

// WillWrite says how many bytes the caller will write.
func (w *UploadWriter) WillWrite(n int64) { w.expect = n }

// filled starts sending the part being filled once the caller's hint
// says it will be whole, and hands the stream what was added. Without a
// hint a part waits until it is full: a part sent on a guess would, for
// the many bodies shorter than a part (config blobs), start a multipart
// upload and a PUT only to give both up.
func (w *UploadWriter) filled(added int) {
	if w.expect > 0 {
		w.expect -= int64(added)
	}
	b := *w.buf
	if w.stream == nil && len(b) < cap(b) && len(w.st.Parts) < maxParts {
		if w.expect >= int64(cap(b)-len(b)) {
			key := w.s.dataKey(w.id)
			if err := w.s.startMultipart(w.ctx, key, &w.st.MPU, "upload "+w.id); err != nil {
				return // sendPart tries again, and fails if it must
			}
			w.stream = w.s.streamPart(w.ctx, key, w.st.MPU, len(w.st.Parts)+1, b[:cap(b)], len(b))
			return
		}
	}
	if w.stream != nil {
		w.stream.advance(len(b))
	}
}

// stopStream ends the part stream, if any, without storing the part.
func (w *UploadWriter) stopStream() {
	if w.stream != nil {
		w.stream.stop()
		w.stream = nil
	}
}

// partStream sends one part of a multipart upload while the part buffer
// fills: the PUT's body reads the buffer up to where Write has filled it
// and waits for more. A part sent only once full would keep the client's
// chunk and the PUT to the store from overlapping, so that a chunked push
// ran at the sum of their times instead of the slower one's. The part is
// declared whole (the buffer's size), so a stream stopped short of it
// stores nothing: the store refuses a body shorter than its length.
type partStream struct {
	buf  []byte // the part buffer, at its full size
	mu   sync.Mutex
	more *sync.Cond
	// filled is how much of buf Write has filled; read, how much the PUT
	// has taken. Bytes below filled are never written again while the
	// stream runs, so the PUT reads them without the lock.
	filled, read int
	stopped      error // once set, the body fails with it
	done         chan struct{}
	etag         string // the PUT's result, once done is closed
	err          error
}

// streamPart starts sending buf (full size, of which filled bytes are
// written) as part n of the multipart upload mpu at key.
func (s *Store) streamPart(ctx context.Context, key, mpu string, n int, buf []byte, filled int) *partStream {
	ps := &partStream{buf: buf, filled: filled, done: make(chan struct{})}
	ps.more = sync.NewCond(&ps.mu)
	go func() {
		defer close(ps.done)
		// Not retried: the body is read once. A failed stream is sent
		// again from the buffer once full (UploadWriter.sendPart).
		body, opts := s.partBody(ps)
		p, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, key, mpu, n, body, int64(len(buf)), opts)
		ps.etag, ps.err = p.ETag, err
	}()
	return ps
}

// Read is the PUT's body.
func (ps *partStream) Read(p []byte) (int, error) {
	ps.mu.Lock()
	for ps.read == ps.filled && ps.stopped == nil && ps.read < len(ps.buf) {
		ps.more.Wait()
	}
	from, to, stopped := ps.read, ps.filled, ps.stopped
	ps.mu.Unlock()
	if stopped != nil {
		return 0, stopped
	}
	if from == len(ps.buf) {
		return 0, io.EOF
	}
	n := copy(p, ps.buf[from:to])
	ps.mu.Lock()
	ps.read += n
	ps.mu.Unlock()
	return n, nil
}

// advance tells the PUT that the buffer is filled up to filled.
func (ps *partStream) advance(filled int) {
	ps.mu.Lock()
	ps.filled = filled
	ps.mu.Unlock()
	ps.more.Signal()
}

// wait returns the PUT's result, once the whole buffer was given to it.
func (ps *partStream) wait() (etag string, err error) {
	<-ps.done
	return ps.etag, ps.err
}

// stop ends the PUT short of its length, which the store then does not
// keep, and returns once it has ended: the buffer is the caller's again.
func (ps *partStream) stop() {
	ps.mu.Lock()
	if ps.stopped == nil {
		ps.stopped = errPartStopped
	}
	ps.mu.Unlock()
	ps.more.Broadcast()
	<-ps.done
}

// errPartStopped ends the body of a part that will not be whole.
var errPartStopped = fmt.Errorf("blobstore/s3: part stopped short")

// startMultipart starts the multipart upload at key, unless *mpu names
// one already, and sets *mpu to its id.
func (s *Store) startMultipart(ctx context.Context, key string, mpu *string, what string) error {
	if *mpu != "" {
		return nil
	}
	id, err := retryDirRace(ctx, func() (string, error) {
		return s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{})
	})
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: start multipart upload of %s: %w", what, err))
	}
	*mpu = id
	return nil
}

// partPool recycles part buffers: each writing upload holds one.
type partPool struct {
	size int64
	pool *sync.Pool
}

func newPartPool(size int64) partPool {
	return partPool{size: size, pool: &sync.Pool{New: func() any { b := make([]byte, 0, size); return &b }}}
}

func (p partPool) get() *[]byte { b := p.pool.Get().(*[]byte); *b = (*b)[:0]; return b }

func (p partPool) put(b *[]byte) { p.pool.Put(b) }
