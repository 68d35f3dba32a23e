package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

// maxCopySize is the largest object a single server-side CopyObject may
// copy; above it the copy is a multipart copy.
const maxCopySize = 5 << 30

// uploadState is an upload's progress, kept by the caller (with the
// session, in the database) and handed back on every call. The bytes of
// the upload are, in order: the parts of the multipart upload at
// uploads/<id>/data (or, once Assembled, that object itself), then the
// tail object.
type uploadState struct {
	// MPU is the multipart upload id, "" until the first whole part.
	MPU   string `json:"mpu,omitempty"`
	Parts []part `json:"parts,omitempty"`
	// Assembled is set once the parts were completed into the data object
	// (to read them back); no more parts can be added then.
	Assembled bool `json:"assembled,omitempty"`
	// Tail is how many bytes follow the parts, in TailKey's object; S3
	// refuses non-final parts under 5 MiB, so bytes short of a whole part
	// wait there for the next write instead of in a replica's memory.
	Tail     int64  `json:"tail,omitempty"`
	TailETag string `json:"tail_etag,omitempty"`
	// TailWriter is the random name of the writer that stored the tail,
	// part of its key (see tailName).
	TailWriter string `json:"tail_writer,omitempty"`
	// OldTailNames are the tails (tailName) that this state replaced.
	// They are deleted on the next call, when this state has been
	// recorded: a writer that deleted its predecessor's tail itself would
	// lose it if its caller then failed to record the new state.
	OldTailNames []string `json:"old_tail_names,omitempty"`
	// OldTails are the end offsets of replaced tails whose keys had no
	// writer's name (states recorded before TailWriter existed).
	OldTails []int64 `json:"old_tails,omitempty"`
}

type part struct {
	N    int    `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

func (st *uploadState) partsSize() int64 {
	var n int64
	for _, p := range st.Parts {
		n += p.Size
	}
	return n
}

func (st *uploadState) size() int64 { return st.partsSize() + st.Tail }

// decodeState reads a recorded state; nil is no upload (StartUpload never
// returns one), so a caller without a recorded state gets ErrNotFound.
func decodeState(id string, state blobstore.State) (uploadState, error) {
	var st uploadState
	if len(state) == 0 {
		return st, fmt.Errorf("blobstore/s3: upload %s: no state recorded: %w", id, blobstore.ErrNotFound)
	}
	if err := json.Unmarshal(state, &st); err != nil {
		return st, fmt.Errorf("blobstore/s3: corrupt upload state: %w", err)
	}
	return st, nil
}

// uploadOf checks a call's upload id, decodes its recorded state and
// checks the context, in the order every upload method needs: bad input
// first, then a missing upload, then a cancelled call.
func uploadOf(ctx context.Context, id string, state blobstore.State) (uploadState, error) {
	if err := validID(id); err != nil {
		return uploadState{}, err
	}
	st, err := decodeState(id, state)
	if err != nil {
		return st, err
	}
	return st, ctx.Err()
}

func (st *uploadState) encode() blobstore.State {
	b, _ := json.Marshal(st) // plain data: cannot fail
	return b
}

// validID accepts the ids the registry makes (and the contract suite
// tries): 1–128 of [A-Za-z0-9_-], which are safe in an object key.
func validID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("blobstore/s3: invalid upload id %q", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("blobstore/s3: invalid upload id %q", id)
		}
	}
	return nil
}

func (s *Store) dataKey(id string) string { return s.cfg.Prefix + "uploads/" + id + "/data" }

// tailName names st's tail by the offset where it ends and by the writer
// that stored it. Each write is a writer of its own, so no two writes
// share a tail key: a writer whose caller never recorded its state (it
// died, or lost its claim on the session while stalled and wrote on)
// cannot replace the tail that the recorded state names, and the writer
// that holds the session finds it intact.
func tailName(st *uploadState) string {
	name := "tail-" + strconv.FormatInt(st.size(), 10)
	if st.TailWriter != "" {
		name += "-" + st.TailWriter
	}
	return name
}

func (s *Store) tailKey(id string, st *uploadState) string {
	return s.uploadKey(id, tailName(st))
}

func (s *Store) uploadKey(id, name string) string { return s.cfg.Prefix + "uploads/" + id + "/" + name }

// oldTailKeys are the keys of the tails that st replaced.
func (s *Store) oldTailKeys(id string, st *uploadState) []string {
	keys := make([]string, 0, len(st.OldTailNames)+len(st.OldTails))
	for _, name := range st.OldTailNames {
		keys = append(keys, s.uploadKey(id, name))
	}
	for _, end := range st.OldTails {
		keys = append(keys, s.uploadKey(id, "tail-"+strconv.FormatInt(end, 10)))
	}
	return keys
}

// dropOldTails deletes the tails that the recorded state st replaced. A
// failure only leaves litter (for the janitor), so it is logged, not
// returned.
func (s *Store) dropOldTails(ctx context.Context, id string, st *uploadState) {
	for _, key := range s.oldTailKeys(id, st) {
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
			s.log.WarnContext(ctx, "old upload tail not removed", "upload", id, "key", key, "err", err)
		}
	}
	st.OldTails, st.OldTailNames = nil, nil
}

// StartUpload begins upload id and returns its initial state. Nothing is
// written to the bucket until bytes arrive.
func (s *Store) StartUpload(ctx context.Context, id string) (blobstore.State, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return (&uploadState{}).encode(), nil
}

// UploadSize returns how many bytes the upload in state holds (not part
// of blobstore.Store: callers know it from their records).
func (s *Store) UploadSize(ctx context.Context, id string, state blobstore.State) (int64, error) {
	st, err := uploadOf(ctx, id, state)
	if err != nil {
		return 0, err
	}
	return st.size(), nil
}

// WriteUpload returns a writer that appends to the upload at offset, which
// must be the size that state records (a retry passes the state of the
// offset it retries from: parts written after it are then replaced).
// After Close, State returns the state to record with the new offset.
func (s *Store) WriteUpload(ctx context.Context, id string, offset int64, state blobstore.State) (blobstore.UploadWriter, error) {
	st, err := uploadOf(ctx, id, state)
	if err != nil {
		return nil, err
	}
	if offset != st.size() {
		return nil, fmt.Errorf("blobstore/s3: write at %d, but upload %s holds %d bytes", offset, id, st.size())
	}
	if st.Assembled {
		return nil, fmt.Errorf("blobstore/s3: upload %s was read back and can no longer be appended to", id)
	}
	s.dropOldTails(ctx, id, &st)
	w := &UploadWriter{s: s, ctx: ctx, id: id, st: st, buf: s.parts.get(), name: rand.Text(), expect: -1}
	if st.Tail > 0 {
		// The tail becomes the start of the next part.
		if err := w.loadTail(); err != nil {
			w.release()
			return nil, err
		}
	}
	return w, nil
}

var (
	_ blobstore.Aborter      = (*UploadWriter)(nil)
	_ blobstore.LengthHinter = (*UploadWriter)(nil)
)

// UploadWriter streams bytes into an upload, one part in memory at most.
type UploadWriter struct {
	s   *Store
	ctx context.Context
	id  string
	st  uploadState
	buf *[]byte // len = bytes waiting for the next part
	// name is this writer's part of the key of the tail it stores.
	name string
	// loadedTail is the name of the tail read at the start, "" if none.
	loadedTail string
	// expect is how many more bytes the caller said it will write; -1
	// when it did not say.
	expect int64
	// stream sends the part being filled; nil while none is sent.
	stream *partStream
	err    error
	closed bool
}

// errAborted is a write to a writer given up with Abort.
var errAborted = errors.New("blobstore/s3: write after abort")

func (w *UploadWriter) loadTail() error {
	obj, err := w.s.core.Client.GetObject(w.ctx, w.s.cfg.Bucket, w.s.tailKey(w.id, &w.st), tailGetOptions(w.st.TailETag))
	if err != nil {
		return ctxOr(w.ctx, notFound(err))
	}
	defer obj.Close()
	b := (*w.buf)[:w.st.Tail]
	if _, err := io.ReadFull(obj, b); err != nil {
		return ctxOr(w.ctx, fmt.Errorf("blobstore/s3: read tail of upload %s: %w", w.id, notFound(err)))
	}
	*w.buf = b
	w.loadedTail = tailName(&w.st)
	w.st.Tail, w.st.TailETag, w.st.TailWriter = 0, "", ""
	return nil
}

// tailGetOptions reads the tail only if it is the object the state
// recorded: a writer that should be dead but is not may have replaced it.
func tailGetOptions(etag string) minio.GetObjectOptions {
	var o minio.GetObjectOptions
	if etag != "" {
		_ = o.SetMatchETag(etag)
	}
	return o
}

// Write buffers p and sends each whole part as it fills.
func (w *UploadWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("blobstore/s3: write after close")
	}
	written, err := fillParts(w.buf, int(w.s.parts.size), p, w.filled, w.sendPart)
	w.err = err
	return written, err
}

// fillParts copies p into the part buffer *buf, calls filled (if not nil)
// with the bytes added each time, and calls send each time the buffer
// holds a whole part of size bytes (send empties it). It returns how much
// of p it took.
func fillParts(buf *[]byte, size int, p []byte, filled func(int), send func() error) (int, error) {
	written := 0
	for len(p) > 0 {
		b := *buf
		n := copy(b[len(b):size], p)
		*buf = b[:len(b)+n]
		p = p[n:]
		written += n
		if filled != nil {
			filled(n)
		}
		if len(*buf) == size {
			if err := send(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (w *UploadWriter) sendPart() error {
	if w.loadedTail != "" {
		// The loaded tail is inside this part now; once the state is
		// recorded its object is litter.
		w.st.OldTailNames = append(w.st.OldTailNames, w.loadedTail)
		w.loadedTail = ""
	}
	n := len(w.st.Parts) + 1
	b := *w.buf
	var etag string
	var err error
	if w.stream != nil {
		etag, err = w.stream.wait()
		w.stream = nil
	}
	if etag == "" || err != nil {
		// Not streamed, or the stream failed: the buffer holds the part.
		etag, err = w.s.putPart(w.ctx, w.s.dataKey(w.id), &w.st.MPU, n, b, "upload "+w.id)
	}
	if err != nil {
		return err
	}
	w.st.Parts = append(w.st.Parts, part{N: n, ETag: etag, Size: int64(len(b))})
	*w.buf = b[:0]
	return nil
}

// putPart sends b as part n of the multipart upload *mpu at key, starting
// that upload first when *mpu is "". what names the upload in errors.
func (s *Store) putPart(ctx context.Context, key string, mpu *string, n int, b []byte, what string) (etag string, err error) {
	if n > maxParts {
		return "", fmt.Errorf("blobstore/s3: %s reached S3's %d parts; raise the part size", what, maxParts)
	}
	if err := s.startMultipart(ctx, key, mpu, what); err != nil {
		return "", err
	}
	p, err := retryDirRace(ctx, func() (minio.ObjectPart, error) {
		body, opts := s.bufferedPart(b)
		return s.core.PutObjectPart(ctx, s.cfg.Bucket, key, *mpu, n, body, int64(len(b)), opts)
	})
	if err != nil {
		return "", ctxOr(ctx, fmt.Errorf("blobstore/s3: %s part %d: %w", what, n, err))
	}
	return p.ETag, nil
}

// Close stores the bytes short of a whole part as the tail object. Its
// error says whether everything written is durable; State then describes
// it.
func (w *UploadWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	defer w.release()
	// A part still streaming will not be whole: its bytes go to the tail.
	w.stopStream()
	if w.err != nil {
		return w.err
	}
	if b := *w.buf; len(b) > 0 {
		next := w.st
		next.Tail, next.TailWriter = int64(len(b)), w.name
		if w.loadedTail != "" {
			next.OldTailNames = append(next.OldTailNames, w.loadedTail)
		}
		info, err := retryDirRace(w.ctx, func() (minio.UploadInfo, error) {
			return w.s.client.PutObject(w.ctx, w.s.cfg.Bucket, w.s.tailKey(w.id, &next), bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{})
		})
		if err != nil {
			w.err = ctxOr(w.ctx, fmt.Errorf("blobstore/s3: write tail of upload %s: %w", w.id, err))
			return w.err
		}
		next.TailETag = info.ETag
		w.st = next
	}
	return nil
}

// State is the upload's state after a successful Close.
func (w *UploadWriter) State() blobstore.State { return w.st.encode() }

// Abort gives the writer up without storing the bytes it holds short of
// a part (blobstore.Aborter): its caller lost its claim on the upload,
// and must store nothing more.
func (w *UploadWriter) Abort() {
	if !w.closed {
		w.closed, w.err = true, errAborted
		w.release()
	}
}

func (w *UploadWriter) release() {
	w.stopStream() // it reads the buffer
	if w.buf != nil {
		w.s.parts.put(w.buf)
		w.buf = nil
	}
}

// ReadUpload returns a reader of the upload's bytes so far and the state
// to record: S3 cannot read the parts of an unfinished multipart upload,
// so they are completed into the data object first, after which the
// upload can be committed or cancelled but not appended to.
func (s *Store) ReadUpload(ctx context.Context, id string, state blobstore.State) (io.ReadCloser, blobstore.State, error) {
	st, err := uploadOf(ctx, id, state)
	if err != nil {
		return nil, nil, err
	}
	if err := s.assemble(ctx, id, &st); err != nil {
		return nil, nil, err
	}
	var readers []io.Reader
	var closers []io.Closer
	open := func(key string, opts minio.GetObjectOptions) error {
		obj, err := s.client.GetObject(ctx, s.cfg.Bucket, key, opts)
		if err == nil {
			// GetObject is lazy: Stat sends the request, so that a missing
			// object is ErrNotFound here rather than on the first Read.
			if _, err = obj.Stat(); err != nil {
				obj.Close()
			}
		}
		if err != nil {
			return ctxOr(ctx, notFound(err))
		}
		readers, closers = append(readers, obj), append(closers, obj)
		return nil
	}
	if st.Assembled {
		if err := open(s.dataKey(id), minio.GetObjectOptions{}); err != nil {
			return nil, nil, err
		}
	}
	if st.Tail > 0 {
		if err := open(s.tailKey(id, &st), tailGetOptions(st.TailETag)); err != nil {
			closeAll(closers)
			return nil, nil, err
		}
	}
	return multiReadCloser{io.MultiReader(readers...), closers}, st.encode(), nil
}

type multiReadCloser struct {
	io.Reader
	closers []io.Closer
}

func (m multiReadCloser) Close() error { return closeAll(m.closers) }

func closeAll(cs []io.Closer) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// assemble completes the multipart upload into the data object.
func (s *Store) assemble(ctx context.Context, id string, st *uploadState) error {
	if st.Assembled || len(st.Parts) == 0 {
		return nil
	}
	parts := make([]minio.CompletePart, len(st.Parts))
	for i, p := range st.Parts {
		parts[i] = minio.CompletePart{PartNumber: p.N, ETag: p.ETag}
	}
	if _, err := retryDirRace(ctx, func() (minio.UploadInfo, error) {
		return s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, s.dataKey(id), st.MPU, parts, minio.PutObjectOptions{})
	}); err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidPart" {
			// A part's ETag is not the one recorded: a writer that had
			// lost its claim on the session while stalled sent a part of
			// the same number after the recorded one. The bytes the
			// state describes are gone, as if the upload were.
			return fmt.Errorf("blobstore/s3: upload %s: a recorded part was replaced: %w", id, blobstore.ErrNotFound)
		}
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: complete upload %s: %w", id, notFound(err)))
	}
	st.Assembled = true
	return nil
}

// CommitUpload makes the upload (exactly size bytes) visible as blob d with
// server-side copies, then removes the upload's objects. A blob that is
// already there stays as it is (blobs are immutable and deduplicated).
func (s *Store) CommitUpload(ctx context.Context, id string, state blobstore.State, d digest.Digest, size int64) error {
	key, err := s.blobKey(d)
	if err != nil {
		return err
	}
	st, err := uploadOf(ctx, id, state)
	if err != nil {
		return err
	}
	// Whether d is there is asked before the state's size is checked: a
	// process that died after placing d but before its caller recorded the
	// upload's last state leaves a retry only the state before its last
	// chunk, and that retry must find d in place, not a size to refuse.
	if _, err := s.Stat(ctx, d); err == nil {
		return s.CancelUpload(ctx, id, state)
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return err
	}
	if st.size() != size {
		return fmt.Errorf("blobstore/s3: upload %s holds %d bytes, not %d", id, st.size(), size)
	}
	if err := s.place(ctx, id, &st, key); err != nil {
		return err
	}
	if err := s.CancelUpload(context.WithoutCancel(ctx), id, st.encode()); err != nil {
		// The blob is in place; what is left is litter for the janitor.
		s.log.WarnContext(ctx, "upload objects not removed after commit", "upload", id, "err", err)
	}
	return nil
}

// place writes the upload's bytes to key: one copy of the tail, or the
// multipart object (with the tail as its last part) copied over.
func (s *Store) place(ctx context.Context, id string, st *uploadState, key string) error {
	bucket := s.cfg.Bucket
	if len(st.Parts) == 0 {
		if st.Tail == 0 {
			_, err := retryDirRace(ctx, func() (minio.UploadInfo, error) {
				return s.client.PutObject(ctx, bucket, key, bytes.NewReader(nil), 0, minio.PutObjectOptions{})
			})
			return ctxOr(ctx, err)
		}
		src := minio.CopySrcOptions{Bucket: bucket, Object: s.tailKey(id, st), MatchETag: st.TailETag}
		_, err := retryDirRace(ctx, func() (minio.UploadInfo, error) {
			return s.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: key}, src)
		})
		return ctxOr(ctx, notFound(err))
	}
	data := minio.CopySrcOptions{Bucket: bucket, Object: s.dataKey(id)}
	srcs := []minio.CopySrcOptions{data}
	if !st.Assembled && st.Tail > 0 {
		// S3 lets only the last part be small: the tail becomes it.
		p, err := retryDirRace(ctx, func() (minio.CompletePart, error) {
			return s.core.CopyObjectPart(ctx, bucket, s.tailKey(id, st), bucket, s.dataKey(id), st.MPU, len(st.Parts)+1, 0, st.Tail, nil)
		})
		if err != nil {
			return ctxOr(ctx, fmt.Errorf("blobstore/s3: copy tail of upload %s: %w", id, notFound(err)))
		}
		st.OldTailNames = append(st.OldTailNames, tailName(st)) // now a part
		st.Parts = append(st.Parts, part{N: p.PartNumber, ETag: p.ETag, Size: st.Tail})
		st.Tail, st.TailETag, st.TailWriter = 0, "", ""
	}
	if err := s.assemble(ctx, id, st); err != nil {
		return err
	}
	if st.Tail > 0 {
		srcs = append(srcs, minio.CopySrcOptions{Bucket: bucket, Object: s.tailKey(id, st), MatchETag: st.TailETag})
	}
	dst := minio.CopyDestOptions{Bucket: bucket, Object: key}
	var err error
	if len(srcs) == 1 && st.size() <= maxCopySize {
		_, err = retryDirRace(ctx, func() (minio.UploadInfo, error) { return s.client.CopyObject(ctx, dst, data) })
	} else {
		// Multipart copy: above 5 GiB, or data object + tail.
		_, err = retryDirRace(ctx, func() (minio.UploadInfo, error) { return s.client.ComposeObject(ctx, dst, srcs...) })
	}
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: place blob of upload %s: %w", id, err))
	}
	return nil
}

// CancelUpload removes the upload's objects and aborts its multipart
// upload. Objects already gone are no error.
func (s *Store) CancelUpload(ctx context.Context, id string, state blobstore.State) error {
	st, err := uploadOf(ctx, id, state)
	if err != nil {
		return err
	}
	if st.MPU == "" && st.Tail == 0 && len(st.OldTailNames) == 0 && len(st.OldTails) == 0 {
		// Nothing was stored under this state (nor assembled, which takes
		// parts): there is nothing to remove, and no request to send. What
		// a writer that died before its state was recorded left is the
		// janitor's.
		return nil
	}
	var errs []error
	if st.MPU != "" && !st.Assembled {
		if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, s.dataKey(id), st.MPU); err != nil && !errors.Is(notFound(err), blobstore.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	keys := []string{s.dataKey(id)}
	if st.Tail > 0 {
		keys = append(keys, s.tailKey(id, &st))
	}
	keys = append(keys, s.oldTailKeys(id, &st)...)
	for _, k := range keys {
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, k, minio.RemoveObjectOptions{}); err != nil && !errors.Is(notFound(err), blobstore.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return ctxOr(ctx, errors.Join(errs...))
}
