package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registry"
)

// A blob not yet cached is fetched once however many clients ask for it
// at the same time: the first request starts a fetch that reads the
// upstream into its own buffers, writes each chunk to a spool file and
// hashes it. The request that started the fetch (the lead) is lent each
// chunk's buffer before it is spooled, and sends it to its client while
// the fetch spools and hashes it, so its bytes never come back out of the
// spool; other requests, and a lead that has fallen behind, send the
// spool as far as it is written, waiting for more. The fetch
// never waits for a client: a slow one just reads more of the spool.
// Bytes pass through disk and a few buffers, never whole through memory.
// The last chunk is readable only once the digest matches, so no client
// receives a whole blob that is not d; then the spool is committed into
// the blob store through the registry as a push would be, after the
// clients have their bytes. A fetch cut off, or bytes that do not match,
// end every reader with an error and leave nothing behind.

// chunkSize bounds the fetch's reads: a read takes what the socket holds,
// up to this, so that bytes reach clients as they arrive, in big pieces
// when the upstream is fast.
const chunkSize = 1 << 20

// fetch is one blob on its way from the upstream.
type fetch struct {
	path  string
	ready chan struct{} // closed once size or err is known
	size  int64

	mu      sync.Mutex
	cond    *sync.Cond
	written int64 // spooled bytes readers may send (all of them once verified)
	done    bool  // verified, or failed (err)
	err     error // set with done when the fetch failed

	// lead says the lead reader is still there to be lent chunks; lent
	// is the chunk lent to it and not yet taken, spare the buffers every
	// holder of a chunk has finished with. The fetch lends a chunk only
	// when the previous one was taken, and the hasher's queue is short,
	// so it holds a few buffers at most: the one it reads into, the
	// hasher's, the lent one, the one being sent.
	lead  bool
	lent  *chunk
	spare [][]byte
}

// chunk is one read of the upstream, shared by whoever still needs it:
// the spool write, the hasher and the lead's send. The last to release
// it gives its buffer back to the fetch.
type chunk struct {
	f    *fetch
	buf  []byte
	at   int64 // offset in the blob
	refs atomic.Int32
}

func (f *fetch) newChunk(buf []byte, at int64) *chunk {
	c := &chunk{f: f, buf: buf, at: at}
	c.refs.Store(1)
	return c
}

// hold takes one more reference to c.
func (c *chunk) hold() { c.refs.Add(1) }

// release drops a reference to c; the last one recycles its buffer.
func (c *chunk) release() {
	if c == nil || c.refs.Add(-1) > 0 {
		return
	}
	c.f.mu.Lock()
	c.f.spare = append(c.f.spare, c.buf[:cap(c.buf)])
	c.f.mu.Unlock()
}

// lend lends c to the lead if the lead took the last one, and reports
// whether it did. The chunk need not be spooled yet: the lead, which
// alone sees it, sends it while the fetch spools and hashes it.
func (f *fetch) lend(c *chunk) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.lead || f.lent != nil {
		return false
	}
	c.hold()
	f.lent = c
	f.cond.Broadcast()
	return true
}

// buffer returns a buffer no chunk holds any more, or a new one.
func (f *fetch) buffer() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := len(f.spare); k > 0 {
		b := f.spare[k-1]
		f.spare = f.spare[:k-1]
		return b
	}
	return make([]byte, chunkSize)
}

// spooled makes the first n bytes, now in the spool, readable.
func (f *fetch) spooled(n int64) {
	f.mu.Lock()
	f.written = n
	f.cond.Broadcast()
	f.mu.Unlock()
}

// dropLead stops lending: the lead reader is gone.
func (f *fetch) dropLead() {
	f.mu.Lock()
	f.lead = false
	c := f.lent
	f.lent = nil
	f.mu.Unlock()
	c.release()
}

// chunkHasher hashes a fetch's chunks in order beside the spool writes,
// on a goroutine of its own: on a loopback upstream, hashing and writing
// one after the other, each the length of the other, would halve the
// fetch's rate.
type chunkHasher struct {
	h    hash.Hash
	q    chan *chunk
	done chan struct{}
}

func newChunkHasher() *chunkHasher {
	q := make(chan *chunk, 2)
	hs := &chunkHasher{h: sha256.New(), q: q, done: make(chan struct{})}
	go func() {
		defer close(hs.done)
		for c := range q {
			hs.h.Write(c.buf)
			c.release()
		}
	}()
	return hs
}

// add queues c, holding it until it is hashed.
func (hs *chunkHasher) add(c *chunk) {
	c.hold()
	hs.q <- c
}

// sum waits for every chunk added and returns their digest.
func (hs *chunkHasher) sum() digest.Digest {
	hs.stop()
	return digest.NewDigest(digest.SHA256, hs.h)
}

// stop ends the hasher once the chunks added are hashed.
func (hs *chunkHasher) stop() {
	if hs.q != nil {
		close(hs.q)
		hs.q = nil
		<-hs.done
	}
}

// BlobReader is a blob served from the mirror while it is fetched.
type BlobReader struct {
	f    *fetch
	fd   *os.File
	off  int64
	lead bool // started the fetch: sends lent chunks
}

// Size is the blob's length.
func (r *BlobReader) Size() int64 { return r.f.size }

// Read returns the bytes spooled so far, waiting for more until the
// fetch ends; a failed fetch is an error, never a short EOF. (WriteTo is
// the fast way; Read never takes lent chunks.)
func (r *BlobReader) Read(p []byte) (int, error) {
	f := r.f
	f.mu.Lock()
	for r.off >= f.written && !f.done {
		f.cond.Wait()
	}
	avail, done, ferr := f.written-r.off, f.done, f.err
	f.mu.Unlock()
	if ferr != nil {
		return 0, ferr
	}
	if avail <= 0 && done {
		return 0, io.EOF
	}
	n, err := r.fd.ReadAt(p[:min(int64(len(p)), avail)], r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// WriteTo sends the blob to w as it arrives: the lead's lent chunks as
// they are, everything else from the spool. A failed fetch is an
// error, never a short copy.
func (r *BlobReader) WriteTo(w io.Writer) (int64, error) {
	f := r.f
	start := r.off
	for r.off < f.size {
		f.mu.Lock()
		for !(r.lead && f.lent != nil) && r.off >= f.written && !f.done {
			f.cond.Wait()
		}
		var c *chunk
		if r.lead && f.lent != nil {
			c, f.lent = f.lent, nil
		}
		written, done, ferr := f.written, f.done, f.err
		f.mu.Unlock()
		if ferr != nil {
			c.release()
			return r.off - start, ferr
		}
		if c == nil && done && r.off >= written {
			return r.off - start, io.ErrUnexpectedEOF // cannot be: verified means all written
		}
		err := r.send(w, c, written)
		c.release()
		if err != nil {
			if r.lead {
				r.lead = false
				f.dropLead()
			}
			return r.off - start, err
		}
	}
	return r.off - start, nil
}

// spoolBufs are the buffers spool reads are sent through: large enough
// that system calls cost little next to the bytes they move, small
// enough that the many clients of one fetch (each holds one) cost little
// memory.
var spoolBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// send writes what the reader may send now: the spool up to the lent
// chunk (or as far as written, without one), then the chunk's bytes the
// reader has not sent yet (it may have sent some from the spool).
func (r *BlobReader) send(w io.Writer, c *chunk, written int64) error {
	upto := written
	if c != nil {
		upto = c.at
	}
	if r.off < upto {
		if _, err := r.fd.Seek(r.off, io.SeekStart); err != nil {
			return err
		}
		bp := spoolBufs.Get().(*[]byte)
		// Only the Writer: through a ResponseWriter's ReadFrom, net/http
		// would sendfile the spool, slower than these copies (see
		// distribution's getBlob).
		n, err := io.CopyBuffer(struct{ io.Writer }{w}, &io.LimitedReader{R: r.fd, N: upto - r.off}, *bp)
		spoolBufs.Put(bp)
		r.off += n
		if err == nil && r.off < upto {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	if c != nil && c.at+int64(len(c.buf)) > r.off {
		n, err := w.Write(c.buf[r.off-c.at:])
		r.off += int64(n)
		return err
	}
	return nil
}

// Close releases the reader's handle on the spool.
func (r *BlobReader) Close() error {
	if r.lead {
		r.lead = false
		r.f.dropLead()
	}
	return r.fd.Close()
}

// OpenBlob returns d of t when it is not yet cached: a reader of the one
// fetch in flight for d, started if none is. cached is true (and the
// reader nil) when the registry already holds d in t.Local; the caller
// then serves it as any blob.
func (m *Mirror) OpenBlob(ctx context.Context, t Target, d digest.Digest) (r *BlobReader, cached bool, err error) {
	if size, err := m.reg.StatBlob(registry.WithPullOnly(ctx), t.Local, d); err == nil {
		t.Source.stats.hits.Add(1)
		t.Source.stats.bytesSaved.Add(size)
		return nil, true, nil
	}
	m.mu.Lock()
	f, joined := m.inflight[d]
	if !joined {
		f = &fetch{ready: make(chan struct{}), lead: true}
		f.cond = sync.NewCond(&f.mu)
		m.inflight[d] = f
		// The fetch outlives the request that started it: the other
		// clients reading it must not fail when that one hangs up.
		m.fetches.Add(1)
		go func() {
			defer m.fetches.Done()
			m.fetchBlob(context.WithoutCancel(ctx), t, d, f)
		}()
	}
	m.mu.Unlock()
	// A starter that returns no reader lends nothing more.
	abandon := func() {
		if !joined {
			f.dropLead()
		}
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		abandon()
		return nil, false, ctx.Err()
	}
	if f.path == "" {
		f.mu.Lock()
		err := f.err
		f.mu.Unlock()
		return nil, false, m.blobError(t, d, err)
	}
	// The spool is removed only under m.mu, once the fetch has left the
	// map; a reader that still finds the fetch there can open it.
	m.mu.Lock()
	if m.inflight[d] != f {
		m.mu.Unlock()
		abandon()
		f.mu.Lock()
		ferr := f.err
		f.mu.Unlock()
		if ferr != nil {
			return nil, false, m.blobError(t, d, ferr)
		}
		// Committed meanwhile: the registry has it now.
		return m.OpenBlob(ctx, t, d)
	}
	fd, err := os.Open(f.path)
	m.mu.Unlock()
	if err != nil {
		abandon()
		return nil, false, err
	}
	if joined {
		// Served from the fetch another request started: the upstream
		// sends these bytes once.
		t.Source.stats.hits.Add(1)
		t.Source.stats.bytesSaved.Add(f.size)
	}
	return &BlobReader{f: f, fd: fd, lead: !joined}, false, nil
}

func (m *Mirror) blobError(t Target, d digest.Digest, err error) error {
	if errors.Is(err, ErrNotFound) {
		return registry.Errorf(registry.ErrBlobUnknown, "blob %s is not in %s (upstream %s)", d, t.Remote, t.Source.Host)
	}
	return registry.Errorf(ErrUpstream, "upstream %s could not be asked for blob %s of %s, and it is not cached: %v", t.Source.Host, d, t.Remote, err)
}

// fetchBlob runs one fetch to its end and then takes it out of the map.
// A failed fetch leaves the map and the disk before its readers hear of
// it, so that a retry starts afresh and finds nothing half-written.
func (m *Mirror) fetchBlob(ctx context.Context, t Target, d digest.Digest, f *fetch) {
	err := m.download(ctx, t, d, f)
	if err != nil {
		m.forget(d, f)
		m.opts.Log.WarnContext(ctx, "blob fetch failed; nothing cached", "upstream", t.Source.Host, "repo", t.Local, "digest", d, "err", err)
	}
	f.mu.Lock()
	f.done, f.err = true, err
	f.cond.Broadcast()
	f.mu.Unlock()
	select {
	case <-f.ready:
	default:
		close(f.ready)
	}
	if err != nil {
		return
	}
	if _, cerr := m.commit(ctx, t, d, f); cerr != nil {
		m.opts.Log.ErrorContext(ctx, "fetched blob not cached", "upstream", t.Source.Host, "repo", t.Local, "digest", d, "err", cerr)
	}
	m.forget(d, f)
}

// forget takes f out of the map and removes its spool; readers keep
// their open handles.
func (m *Mirror) forget(d digest.Digest, f *fetch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight[d] == f {
		delete(m.inflight, d)
	}
	if f.path != "" {
		_ = os.Remove(f.path)
	}
}

// download copies the upstream's bytes into the spool, hashing them, and
// reports whether they are d. Each chunk is published once spooled; the
// last only once the digest matches.
func (m *Mirror) download(ctx context.Context, t Target, d digest.Digest, f *fetch) error {
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("blob %s: only sha256 blobs are mirrored", d)
	}
	ctx, idle := m.watchIdle(ctx)
	defer idle.stop()
	body, size, err := t.Source.Upstream.Blob(ctx, t.Remote, d)
	if err != nil {
		return idle.explain(err)
	}
	defer body.Close()
	if err := os.MkdirAll(m.opts.SpoolDir, 0o750); err != nil {
		return err
	}
	spool, err := os.CreateTemp(m.opts.SpoolDir, "blob-*")
	if err != nil {
		return err
	}
	defer spool.Close()
	f.path, f.size = spool.Name(), size
	close(f.ready)
	hasher := newChunkHasher()
	defer hasher.stop()
	var n int64
	for n < size {
		buf := f.buffer()
		k, rerr := body.Read(buf[:min(int64(len(buf)), size-n)])
		if k > 0 {
			idle.progress()
		}
		c := f.newChunk(buf[:k], n)
		if rerr != nil && (rerr != io.EOF || n+int64(k) < size) {
			c.release()
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%w: blob %s cut off after %d of %d bytes: %v", ErrUnreachable, d, n+int64(k), size, idle.explain(rerr))
		}
		if k == 0 {
			c.release()
			continue
		}
		last := n+int64(k) == size
		if !last {
			f.lend(c)
		}
		hasher.add(c)
		if _, err := spool.Write(c.buf); err != nil {
			c.release()
			return err
		}
		t.Source.stats.bytesFetched.Add(int64(k))
		if last {
			if got := hasher.sum(); got != d {
				c.release()
				return fmt.Errorf("blob %s: upstream sent %s", d, got)
			}
			f.lend(c)
		}
		c.release()
		n += int64(k)
		f.spooled(n)
	}
	t.Source.stats.misses.Add(1)
	return nil
}

// commit stores the verified spool in the blob store, linked to the
// local repository, as a monolithic push would.
func (m *Mirror) commit(ctx context.Context, t Target, d digest.Digest, f *fetch) (int64, error) {
	fd, err := os.Open(f.path)
	if err != nil {
		return 0, err
	}
	defer fd.Close()
	n, err := m.reg.PutBlob(asMirror(ctx, t.Source), t.Local, d, fd, f.size)
	if err == nil {
		m.opts.Log.InfoContext(ctx, "blob cached from upstream", "upstream", t.Source.Host, "repo", t.Local, "digest", d, "bytes", n)
	}
	return n, err
}

// errIdle ends a fetch whose upstream went quiet.
var errIdle = errors.New("the upstream sent nothing")

// idleWatch cancels a fetch's context once its upstream has sent nothing
// for the idle timeout. A stalled connection otherwise never errs: the
// readers would wait on the spool, and the fetch would stay in flight,
// for as long as the TCP connection lives.
type idleWatch struct {
	timer   Timer
	timeout time.Duration
	ctx     context.Context
}

func (m *Mirror) watchIdle(ctx context.Context) (context.Context, *idleWatch) {
	w := &idleWatch{timeout: m.opts.IdleTimeout}
	if w.timeout <= 0 {
		w.ctx = ctx
		return ctx, w
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w.ctx = ctx
	w.timer = m.opts.AfterFunc(w.timeout, func() { cancel(fmt.Errorf("%w for %s", errIdle, w.timeout)) })
	return ctx, w
}

// progress restarts the timeout: bytes arrived.
func (w *idleWatch) progress() {
	if w.timer != nil {
		w.timer.Reset(w.timeout)
	}
}

func (w *idleWatch) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// explain replaces the transport's "context canceled" with the reason
// the watchdog cancelled the fetch.
func (w *idleWatch) explain(err error) error {
	if cause := context.Cause(w.ctx); errors.Is(cause, errIdle) {
		return cause
	}
	return err
}
