package fs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// samePrefix returns n distinct 1 KiB blobs whose digests share their
// first two hex digits, so that they land in one fan-out directory.
func samePrefix(n int) [][]byte {
	var out [][]byte
	prefix := ""
	for i := 0; len(out) < n; i++ {
		data := bytes.Repeat([]byte(fmt.Sprintf("%08d", i)), 128)
		p := digest.FromBytes(data).Encoded()[:2]
		if prefix == "" {
			prefix = p
		}
		if p == prefix {
			out = append(out, data)
		}
	}
	return out
}

// commitWatched commits data as upload id, recording each directory sync
// and whether the blob was at its final path when it ran.
func commitWatched(t *testing.T, s *Store, id string, data []byte) []string {
	t.Helper()
	d := digest.FromBytes(data)
	blob, err := s.blobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	var synced []string
	s.syncDir = func(dir string) error {
		_, err := os.Stat(blob)
		synced = append(synced, dir+map[bool]string{true: " (blob in place)", false: " (blob absent)"}[err == nil])
		return syncDir(dir)
	}
	startWith(t, s, id, data)
	if err := s.CommitUpload(t.Context(), id, nil, d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return synced
}

// A commit syncs its blob's directory once the rename is done, which is
// what makes the blob durable before the commit returns (and the registry
// answers 201). The first commit into a fan-out directory makes it and
// syncs its parent before the rename; later ones sync only their own
// directory.
func TestCommitUpload_SyncsTheDirectoryAfterTheRename(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs := samePrefix(2)
	dir := filepath.Join(s.blobs, "sha256", digest.FromBytes(blobs[0]).Encoded()[:2])
	first := commitWatched(t, s, "first", blobs[0])
	want := []string{filepath.Join(s.blobs, "sha256") + " (blob absent)", dir + " (blob in place)"}
	if !slices.Equal(first, want) {
		t.Fatalf("first commit into %s: directory syncs %q, want %q", dir, first, want)
	}
	second := commitWatched(t, s, "second", blobs[1])
	if want := []string{dir + " (blob in place)"}; !slices.Equal(second, want) {
		t.Fatalf("second commit: directory syncs %q, want %q", second, want)
	}
	for _, b := range blobs {
		if got, err := os.ReadFile(filepath.Join(dir, digest.FromBytes(b).Encoded())); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("blob after commit: %v", err)
		}
	}
}

// Concurrent first commits into one fan-out directory all succeed, however
// their mkdirs and renames interleave.
func TestCommitUpload_ConcurrentFirstCommitsIntoOneDirectory(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs := samePrefix(8)
	for i, b := range blobs {
		startWith(t, s, fmt.Sprint("u", i), b)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(blobs))
	for i, b := range blobs {
		wg.Go(func() {
			errs[i] = s.CommitUpload(t.Context(), fmt.Sprint("u", i), nil, digest.FromBytes(b), int64(len(b)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
}

// A commit that renames into a fan-out directory that a concurrent commit
// has made, but whose parent that commit has not synced yet, waits for the
// sync before it returns: until then its blob's directory entry, and so
// the blob, could vanish in a machine crash.
func TestCommitUpload_WaitsForTheParentSyncOfADirectoryBeingMade(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs := samePrefix(2)
	startWith(t, s, "a", blobs[0])
	startWith(t, s, "b", blobs[1])
	made, release, waiting := make(chan struct{}), make(chan struct{}), make(chan struct{})
	s.at = func(point string) {
		switch point {
		case "fan-out-made": // a, between its mkdir and its parent's sync
			close(made)
			<-release
		case "fan-out-wait": // b, renamed, waiting for that sync
			close(waiting)
		}
	}
	commit := func(id string, b []byte) error {
		return s.CommitUpload(t.Context(), id, nil, digest.FromBytes(b), int64(len(b)))
	}
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { errA = commit("a", blobs[0]) })
	<-made
	bDone := make(chan struct{})
	go func() { errB = commit("b", blobs[1]); close(bDone) }()
	select {
	case <-waiting:
	case <-bDone:
		t.Fatal("b's commit returned before the parent of the directory it renamed into was synced")
	}
	close(release)
	wg.Wait()
	<-bDone
	if errA != nil || errB != nil {
		t.Fatalf("commits: %v, %v", errA, errB)
	}
}
