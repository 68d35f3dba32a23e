package fs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Garbage collection runs beside commits, possibly from another process on
// the same root, with no lock between them. The blob file's modification
// time is the only shared state:
//
//   - CommitUpload stamps a blob it stores or reuses with the commit time
//     (a reuse touches the existing file), and returns early for a reuse
//     only if the touched file is still at the blob's path afterwards.
//   - Collect removes a blob only if its mtime is before the cutoff, and
//     checks that twice: before moving the file from its path to trash/
//     (one atomic rename) and after. A reuse that touched the file before
//     the move shows in the second check, and Collect puts the file back.
//     A reuse after the move finds no file at the path, so its commit
//     stores its own bytes.
//
// So a commit that returned nil leaves at the blob's path a file marked no
// earlier than the commit, and only a Collect whose cutoff is later than
// that can remove it.
//
// A Collect interrupted after the move (a killed `wharf gc`) leaves the
// blob in trash/, where a reuse that returned nil may still depend on it.
// New therefore puts back whatever it finds there: undoing a collection is
// always safe (the next one repeats it), and trash/ is normally empty, so
// this costs one small directory read per start.

// walkBatch is how many directory entries Walk reads at a time: a prefix
// directory of a large store holds thousands of blobs.
const walkBatch = 1024

// Walk calls fn for every committed blob, one directory read at a time,
// skipping names that are not a blob of their directory. Blobs committed or
// collected while it runs may or may not be visited. It reads names only
// (the directory's entry types say which are files): a blob's size is
// wanted only once it is found unused, and a stat of every blob was most
// of a walk's time.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, alg := range slices.Sorted(maps.Keys(hexLen)) {
		algDir := filepath.Join(s.blobs, string(alg))
		prefixes, err := os.ReadDir(algDir) // at most 256
		if err != nil {
			return fmt.Errorf("blobstore/fs: walk: %w", err)
		}
		for _, p := range prefixes {
			if !p.IsDir() || len(p.Name()) != 2 {
				continue
			}
			if err := s.walkDir(ctx, alg, filepath.Join(algDir, p.Name()), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) walkDir(ctx context.Context, alg digest.Algorithm, dir string, fn func(digest.Digest) error) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blobstore/fs: walk: %w", err)
	}
	defer f.Close()
	for {
		entries, rerr := f.ReadDir(walkBatch)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !e.Type().IsRegular() {
				continue
			}
			// blobPath is the one definition of a blob's name.
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if p, err := s.blobPath(d); err != nil || p != filepath.Join(dir, e.Name()) {
				continue
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("blobstore/fs: walk: %w", rerr)
		}
	}
}

// Collect removes blob d unless its mtime, the time it was committed or
// last reused, is at or after cutoff. If it returns an error after moving
// the blob aside, the blob stays in trash/ until New puts it back. size is
// the size of the file it removed.
func (s *Store) Collect(ctx context.Context, d digest.Digest, cutoff time.Time) (size int64, removed bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	blob, err := s.blobPath(d)
	if err != nil {
		return 0, false, err
	}
	fi, err := os.Stat(blob)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, blobErr("collect", d, err)
	}
	if !fi.ModTime().Before(cutoff) {
		return 0, false, nil
	}
	if err := s.makeTrash(); err != nil {
		return 0, false, blobErr("collect", d, err)
	}
	s.step("collect-trash")
	trash := filepath.Join(s.trash, trashName(d))
	if err := os.Rename(blob, trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, false, nil // collected or deleted meanwhile
		}
		return 0, false, blobErr("collect", d, err)
	}
	// No cancellation from here on: the blob must go back or go away.
	s.step("collect-trashed")

	// Any vanishing of the trash file below means a New put it back.
	fi, err = os.Stat(trash)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil || !fi.ModTime().Before(cutoff) {
		// Reused before the move (or we cannot tell): the commit that
		// reused it may have returned already.
		if perr := putBack(trash, blob); perr != nil {
			err = errors.Join(err, perr)
		}
		if err != nil {
			return 0, false, blobErr("collect", d, err)
		}
		s.log.DebugContext(ctx, "blob reused while being collected; kept", "digest", d)
		return 0, false, nil
	}
	if err := os.Remove(trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, false, nil
		}
		return 0, false, blobErr("collect", d, err)
	}
	// No directory sync: a crash that brings the blob back (at its path,
	// or in trash/, which New puts back) undoes a removal that nothing
	// relied on, and the next collection repeats it. Two syncs per blob
	// were most of a collection's time.
	s.log.DebugContext(ctx, "blob collected", "digest", d)
	return fi.Size(), true, nil
}

// touch sets path's modification time to now, the mark of a commit or a
// reuse that Collect honours, and returns it.
func touch(path string) (time.Time, error) {
	now := time.Now()
	return now, os.Chtimes(path, now, now)
}

// makeTrash creates trash/ on first use, durably: a blob renamed into a
// directory that a crash then forgets would be lost.
func (s *Store) makeTrash() error {
	created, err := mkdir(s.trash)
	if err == nil && created {
		err = syncDir(s.root)
	}
	return err
}

// trashName names blob d in trash/. The random part keeps two concurrent
// Collects of one digest (two `wharf gc`) from moving onto each other.
func trashName(d digest.Digest) string {
	return string(d.Algorithm()) + "-" + d.Encoded() + "-" + rand.Text()
}

// trashedBlob returns the blob path a trash file came from.
func (s *Store) trashedBlob(name string) (string, bool) {
	alg, rest, _ := strings.Cut(name, "-")
	hex, _, ok := strings.Cut(rest, "-")
	if !ok {
		return "", false
	}
	p, err := s.blobPath(digest.NewDigestFromEncoded(digest.Algorithm(alg), hex))
	return p, err == nil
}

// putBack moves a trash file back to its blob path. It marks the file
// reused now first: the rename may replace a file that a commit stored
// meanwhile, and that commit's mark must not be lost to an older one. A
// trash file that is gone was put back, or removed, by someone else.
func putBack(trash, blob string) error {
	_, err := touch(trash)
	if err == nil {
		err = os.Rename(trash, blob)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// restoreTrash puts back every blob in trash/. A Collect still running in
// another process then finds its trash file gone and keeps the blob.
func (s *Store) restoreTrash() error {
	entries, err := os.ReadDir(s.trash)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never collected
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		blob, ok := s.trashedBlob(e.Name())
		if !ok {
			s.log.Warn("unknown file in the blob trash; left alone", "path", filepath.Join(s.trash, e.Name()))
			continue
		}
		// Commits create prefix directories on demand.
		if _, err := mkdir(filepath.Dir(blob)); err != nil {
			return err
		}
		if err := putBack(filepath.Join(s.trash, e.Name()), blob); err != nil {
			return err
		}
		s.log.Info("put back a blob that an interrupted garbage collection had moved aside", "path", blob)
	}
	return nil
}

// Reuse marks blob d as reused now and reports whether it is in place
// (see reuse).
func (s *Store) Reuse(ctx context.Context, d digest.Digest) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := s.blobPath(d)
	if err != nil {
		return false, err
	}
	return s.reuse(p), nil
}
