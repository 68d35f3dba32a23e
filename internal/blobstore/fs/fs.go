// Package fs is the filesystem blobstore driver used by embedded
// (single-node) deployments.
//
// Layout under the root directory:
//
//	blobs/<algorithm>/<first two hex chars>/<hex>   committed blobs
//	uploads/<id>                                    in-progress uploads
//	trash/<algorithm>-<hex>-<random>                blobs Collect is removing
//	                                                (made by the first Collect)
//	.ping-*                                         Ping's probe files
//
// An upload becomes a blob by a single rename within the same filesystem,
// so a blob is either absent or complete, never half-written. Garbage
// collection (collect.go) moves a blob aside the same way before deciding
// whether to delete it or put it back.
package fs

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

var (
	_ blobstore.Store     = (*Store)(nil)
	_ blobstore.Collector = (*Store)(nil)
)

// hexLen lists the digest algorithms the store accepts. Naming the crypto
// packages here also links them in, which go-digest needs for
// Digest.Validate to recognise the algorithms at all.
var hexLen = map[digest.Algorithm]int{
	digest.SHA256: sha256.Size * 2,
	digest.SHA512: sha512.Size * 2,
}

// pingPattern names Ping's probe files; a dot can never start an upload id,
// so probes and uploads cannot collide.
const pingPattern = ".ping-*"

var (
	_ blobstore.Store     = (*Store)(nil)
	_ blobstore.Collector = (*Store)(nil)
)

// Store is a blobstore.Store on a local filesystem.
type Store struct {
	root    string
	blobs   string
	uploads string
	trash   string
	log     *slog.Logger
	bufs    sync.Pool // *[]byte of copyBufSize, for uploadWriter.ReadFrom

	flushing  sync.Map                       // upload id → *uploadFlushes
	syncFile  func(*os.File) error           // (*os.File).Sync; tests make it fail
	syncDir   func(string) error             // syncDir; tests watch the order of syncs
	making    sync.Map                       // fan-out directory → *dirMaking (upload.go)
	writeback func(f *os.File, off, n int64) // startWriteback; tests make it stall

	// at, if set, is called at the named points of Collect and CommitUpload
	// between which a race matters, so that tests can run one there.
	at func(point string)
}

// New opens (creating if needed) a store rooted at root. A nil log discards.
func New(root string, log *slog.Logger) (*Store, error) {
	if root == "" {
		return nil, errors.New("blobstore/fs: empty root")
	}
	// Absolute, so a later chdir cannot move the store.
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blobstore/fs: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		root:      root,
		blobs:     filepath.Join(root, "blobs"),
		uploads:   filepath.Join(root, "uploads"),
		trash:     filepath.Join(root, "trash"),
		log:       log,
		syncFile:  (*os.File).Sync,
		syncDir:   syncDir,
		writeback: startWriteback,
	}
	s.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }

	dirs := []string{s.uploads}
	for alg := range hexLen {
		dirs = append(dirs, filepath.Join(s.blobs, string(alg)))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("blobstore/fs: %w", err)
		}
	}
	// Make the layout itself durable, so a commit only has to sync the
	// directories below blobs/<algorithm>. The algorithms' directories are
	// synced too: a fan-out directory that a killed process made may not
	// have had its entry synced.
	for _, dir := range append(dirs[1:], s.blobs, root) {
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("blobstore/fs: %w", err)
		}
	}

	// A crash during Ping can leave a probe behind.
	stale, _ := filepath.Glob(filepath.Join(root, pingPattern))
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("blobstore/fs: %w", err)
		}
		log.Debug("removed stale probe file", "path", p)
	}
	// A crash or kill during Collect can leave a blob in the trash.
	if err := s.restoreTrash(); err != nil {
		return nil, fmt.Errorf("blobstore/fs: %w", err)
	}
	return s, nil
}

// Stat returns the size of a committed blob.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p, err := s.blobPath(d)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, blobErr("stat", d, err)
	}
	return fi.Size(), nil
}

// Open returns the blob's *os.File.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	p, err := s.blobPath(d)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, blobErr("open", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, blobErr("open", d, err)
	}
	return f, fi.Size(), nil
}

// Delete removes a committed blob. Readers that already opened it keep
// reading it. Empty prefix directories stay: removing them would race with
// a concurrent commit into the same directory.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return blobErr("delete", d, err)
	}
	return nil
}

// Ping checks that the root exists and accepts new files.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.root, pingPattern)
	if err != nil {
		return fmt.Errorf("blobstore/fs: ping: %w", err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("blobstore/fs: ping: %w", err)
	}
	return nil
}

// blobPath maps a digest to its file. It is the only place a blob path is
// built, and it builds one only from a validated digest of a supported
// algorithm, whose hex part cannot contain a separator or "..".
func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("blobstore/fs: invalid digest %q: %w", d, err)
	}
	alg, hex := d.Algorithm(), d.Encoded()
	if n, ok := hexLen[alg]; !ok || len(hex) != n {
		return "", fmt.Errorf("blobstore/fs: invalid digest %q: %w", d, digest.ErrDigestUnsupported)
	}
	return filepath.Join(s.blobs, string(alg), hex[:2], hex), nil
}

// step calls the test hook, if any, at point.
func (s *Store) step(point string) {
	if s.at != nil {
		s.at(point)
	}
}

// blobErr wraps err, turning a missing file into blobstore.ErrNotFound.
func blobErr(op string, d digest.Digest, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blobstore/fs: %s blob %s: %w", op, d, blobstore.ErrNotFound)
	}
	return fmt.Errorf("blobstore/fs: %s blob %s: %w", op, d, err)
}

// syncDir makes the directory's entries (creates, renames) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
