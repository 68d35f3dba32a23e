package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

// maxIDLen bounds upload ids; ids become file names.
const maxIDLen = 128

// copyBufSize is the write size when copying from a reader: request bodies
// arrive through a hashing TeeReader, so io.Copy would otherwise fall back
// to 32 KiB writes. One pooled buffer per active upload keeps memory flat.
const copyBufSize = 1 << 20

var _ blobstore.UploadWalker = (*Store)(nil)

// StartUpload creates the empty upload file; an existing id is an error.
// The file is the upload's whole progress, so its state is nil.
func (s *Store) StartUpload(ctx context.Context, id string) (blobstore.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blobstore/fs: start upload %s: %w", id, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("blobstore/fs: start upload %s: %w", id, err)
	}
	return nil, nil
}

// WriteUpload truncates the upload to offset and returns a writer there.
// The upload must already hold at least offset bytes. The state is ignored.
func (s *Store) WriteUpload(ctx context.Context, id string, offset int64, _ blobstore.State) (blobstore.UploadWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("blobstore/fs: write upload: negative offset %d", offset)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return nil, uploadErr("write", id, err)
	}
	if err := seekTruncate(f, offset); err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore/fs: write upload %s: %w", id, err)
	}
	return s.newUploadWriter(f, id, offset), nil
}

// seekTruncate drops any bytes past offset and positions f there.
func seekTruncate(f *os.File, offset int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < offset {
		return fmt.Errorf("offset %d beyond upload size %d", offset, fi.Size())
	}
	if err := f.Truncate(offset); err != nil {
		return err
	}
	_, err = f.Seek(offset, io.SeekStart)
	return err
}

// ReadUpload returns the upload file, opened for reading from the start.
func (s *Store) ReadUpload(ctx context.Context, id string, _ blobstore.State) (io.ReadCloser, blobstore.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, uploadErr("read", id, err)
	}
	return f, nil, nil
}

// UploadSize returns how many bytes the upload holds (not part of
// blobstore.Store: callers know it from their records).
func (s *Store) UploadSize(ctx context.Context, id string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p, err := s.uploadPath(id)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, uploadErr("stat", id, err)
	}
	return fi.Size(), nil
}

// CommitUpload fsyncs the upload and renames it to blob d, then fsyncs the
// directory so the rename survives a crash. The upload must hold exactly
// size bytes. Concurrent commits of one digest are safe: the loser's rename
// replaces the file atomically with identical bytes.
//
// Either way the blob leaves with its modification time set to the commit
// time: that is the mark Collect honours (see collect.go).
func (s *Store) CommitUpload(ctx context.Context, id string, _ blobstore.State, d digest.Digest, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	up, err := s.uploadPath(id)
	if err != nil {
		return err
	}
	blob, err := s.blobPath(d)
	if err != nil {
		return err
	}
	synced := s.syncedSize(id)
	if err := s.waitFlushes(id); err != nil {
		return uploadErr("commit", id, err)
	}
	if err := s.syncUpload(up, size, synced == size); err != nil {
		return uploadErr("commit", id, err)
	}

	if s.reuse(blob) {
		if err := os.Remove(up); err != nil {
			return uploadErr("commit", id, err)
		}
		s.log.DebugContext(ctx, "blob already exists", "digest", d, "upload", id)
		return nil
	}
	// fsync may have taken a while; give up before revealing anything.
	if err := ctx.Err(); err != nil {
		return err
	}
	// The upload's own mtime is its last write, which a slow client may
	// have made long ago, before a collection's cutoff.
	if _, err := touch(up); err != nil {
		return uploadErr("commit", id, err)
	}

	dir := filepath.Dir(blob)
	if err := s.renameIntoFanOut(up, blob); err != nil {
		return uploadErr("commit", id, err)
	}
	if err := s.syncDir(dir); err != nil {
		return fmt.Errorf("blobstore/fs: commit upload: %w", err)
	}
	s.log.DebugContext(ctx, "blob committed", "digest", d, "upload", id, "bytes", size)
	return nil
}

// reuse marks an existing blob as reused now and reports whether the blob
// is in place with at least that mark, so that a commit may keep it instead
// of storing its own bytes.
func (s *Store) reuse(blob string) bool {
	now, err := touch(blob)
	if err != nil {
		// Missing: never stored, or collected meanwhile. Anything else
		// (say, a file we may not touch): storing our own bytes replaces
		// the blob atomically and carries a fresh mark too.
		return false
	}
	s.step("commit-touched")
	// The touch looks the path up before it changes the file, so a Collect
	// can move that file to the trash in between and find it unmarked.
	// Only a blob still at the path with a mark as recent as ours is safe.
	// (A filesystem with coarser timestamps than ours fails this check
	// every time; then every commit stores its bytes, which is correct.)
	fi, err := os.Stat(blob)
	return err == nil && !fi.ModTime().Before(now)
}

// syncUpload checks the upload's size and flushes its bytes to disk,
// unless they are known to be there (durable): the writer that wrote the
// last of them synced them all as it closed (uploadWriter.Close), and a
// second fsync would still cost a device cache flush, about a tenth of a
// small blob's push.
func (s *Store) syncUpload(path string, size int64, durable bool) error {
	if durable {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() != size {
			return fmt.Errorf("upload holds %d bytes, want %d", fi.Size(), size)
		}
		return nil
	}
	// Opened for writing: some systems refuse to fsync read-only handles.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("upload holds %d bytes, want %d", fi.Size(), size)
	}
	if err := s.syncFile(f); err != nil {
		return err
	}
	return f.Close()
}

// renameIntoFanOut renames the upload at up to blob. Its fan-out
// directory (blobs/<algorithm>/<two hex digits>) exists once any blob of
// that prefix was committed, so the rename is tried first: only the first
// commit into a directory pays for making it durably (its parent synced)
// before the rename is retried. Trying mkdir first cost every commit a
// system call that almost always found the directory there.
//
// A rename into a directory that a concurrent commit has made but whose
// parent it has not synced yet waits for that sync: until then the blob's
// directory entry, and so the blob, could vanish in a machine crash.
func (s *Store) renameIntoFanOut(up, blob string) error {
	dir := filepath.Dir(blob)
	err := os.Rename(up, blob)
	if err == nil {
		if v, ok := s.making.Load(dir); ok {
			s.step("fan-out-wait")
			<-v.(*dirMaking).done
			return v.(*dirMaking).err
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	m := &dirMaking{done: make(chan struct{})}
	if v, loaded := s.making.LoadOrStore(dir, m); loaded {
		// Another commit is making it: wait, then rename (a missing
		// upload fails the retry as it failed the first rename).
		<-v.(*dirMaking).done
		if err := v.(*dirMaking).err; err != nil {
			return err
		}
		return os.Rename(up, blob)
	}
	defer func() { s.making.Delete(dir); close(m.done) }()
	if _, m.err = mkdir(dir); m.err != nil {
		return m.err
	}
	s.step("fan-out-made")
	if m.err = s.syncDir(filepath.Dir(dir)); m.err != nil {
		return m.err
	}
	return os.Rename(up, blob)
}

// dirMaking is a fan-out directory being made and its parent synced.
type dirMaking struct {
	done chan struct{}
	err  error // set before done is closed
}

// mkdir creates dir if missing and reports whether this call created it.
func mkdir(dir string) (bool, error) {
	err := os.Mkdir(dir, 0o755)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	return false, err
}

// CancelUpload removes the upload file.
func (s *Store) CancelUpload(ctx context.Context, id string, _ blobstore.State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.uploadPath(id)
	if err != nil {
		return err
	}
	s.flushing.Delete(id)
	if err := os.Remove(p); err != nil {
		return uploadErr("cancel", id, err)
	}
	return nil
}

// WalkUploads calls fn for every upload file with its modification time.
// Entries that are not upload files (an id no upload could have) are
// skipped: CancelUpload could not name them.
func (s *Store) WalkUploads(ctx context.Context, fn func(id string, written time.Time) error) error {
	entries, err := os.ReadDir(s.uploads)
	if err != nil {
		return fmt.Errorf("blobstore/fs: list uploads: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			continue
		}
		if _, err := s.uploadPath(e.Name()); err != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // committed or cancelled since the listing
		}
		if err != nil {
			return fmt.Errorf("blobstore/fs: list uploads: %w", err)
		}
		if err := fn(e.Name(), fi.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// uploadPath maps an upload id to its file. Ids are restricted to
// [A-Za-z0-9_-] so that no id can name a path outside uploads/.
func (s *Store) uploadPath(id string) (string, error) {
	if len(id) == 0 || len(id) > maxIDLen {
		return "", fmt.Errorf("blobstore/fs: invalid upload id %q: length must be 1..%d", id, maxIDLen)
	}
	for _, c := range []byte(id) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
		if !ok {
			return "", fmt.Errorf("blobstore/fs: invalid upload id %q: only A-Z a-z 0-9 - _ allowed", id)
		}
	}
	return filepath.Join(s.uploads, id), nil
}

// uploadErr wraps err, turning a missing file into blobstore.ErrNotFound.
func uploadErr(op, id string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blobstore/fs: %s upload %s: %w", op, id, blobstore.ErrNotFound)
	}
	return fmt.Errorf("blobstore/fs: %s upload %s: %w", op, id, err)
}

// writebackEvery is how many written bytes trigger asynchronous writeback.
// Without it a machine with plenty of memory keeps a whole multi-GiB upload
// dirty in the page cache, and the fsync at commit then waits for all of it;
// starting writeback as bytes arrive overlaps the disk with the network.
const writebackEvery = 8 << 20

// uploadWriter is an upload file opened at its write offset.
type uploadWriter struct {
	f         *os.File
	bufs      *sync.Pool
	flushes   *uploadFlushes
	sync      func(*os.File) error
	writeback func(f *os.File, off, n int64)
	pos       int64 // offset of the next write
	started   int64 // writeback has been started for bytes before this
	synced    int64 // a background flush has been started for bytes before this
	// hinting is closed when the running writeback hint returns; nil when
	// none runs. The hint runs beside the writes because it is not always
	// quick: it queues the range's I/O, and on a busy disk that waits for
	// room in the device queue (10-20 ms seen on this project's VM), which
	// would hold up the next write and, behind it, the client's body.
	hinting chan struct{}
}

func (s *Store) newUploadWriter(f *os.File, id string, offset int64) *uploadWriter {
	// Rounded down so that a chunked upload flushes at the same offsets
	// as a monolithic one, however small its chunks.
	fl := s.flushes(id)
	fl.synced.Store(-1) // until this writer's Close has synced what it wrote
	return &uploadWriter{
		f: f, bufs: &s.bufs, flushes: fl, sync: s.syncFile, writeback: s.writeback,
		pos: offset, started: offset, synced: offset - offset%flushEvery,
	}
}

func (w *uploadWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.pos += int64(n)
	if w.pos-w.started >= writebackEvery && w.hintIdle() {
		// One hint at a time; bytes written meanwhile join the next one.
		done, off, k := make(chan struct{}), w.started, w.pos-w.started
		w.hinting = done
		go func() {
			defer close(done)
			w.writeback(w.f, off, k)
		}()
		w.started = w.pos
	}
	if w.pos-w.synced >= flushEvery && w.flushes.start(w.f.Name(), w.sync) {
		w.synced = w.pos - w.pos%flushEvery
	}
	return n, err
}

// Close makes the bytes written durable before it returns: the registry
// records the session's new offset next and answers 202, and that answer
// must survive a machine crash, so the bytes it counts must be on disk
// before the offset that counts them is. Most of them are already there
// (the writeback hints and background flushes), so this fsync is the
// tail's; the commit's own fsync then finds nothing left to write. It
// does not wait for a running background flush or writeback hint: its
// own fsync covers their bytes too.
func (w *uploadWriter) Close() error {
	err := w.sync(w.f)
	if err == nil {
		w.flushes.synced.Store(w.pos)
	}
	return errors.Join(err, w.f.Close())
}

// hintIdle reports whether no writeback hint runs.
func (w *uploadWriter) hintIdle() bool {
	if w.hinting == nil {
		return true
	}
	select {
	case <-w.hinting:
		w.hinting = nil
		return true
	default:
		return false
	}
}

// State is nil: the file is the upload's progress.
func (w *uploadWriter) State() blobstore.State { return nil }

// ReadFrom lets io.Copy write in copyBufSize chunks instead of 32 KiB ones.
func (w *uploadWriter) ReadFrom(r io.Reader) (int64, error) {
	bp := w.bufs.Get().(*[]byte)
	defer w.bufs.Put(bp)
	// Hide w's ReadFrom from CopyBuffer so that it uses the big buffer.
	return io.CopyBuffer(struct{ io.Writer }{w}, r, *bp)
}
