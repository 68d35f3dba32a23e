package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestNew_MakesEveryFanOutDirectory(t *testing.T) {
	root := t.TempDir()
	if _, err := New(root, nil); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"sha256", "sha512"} {
		entries, err := os.ReadDir(filepath.Join(root, "blobs", alg))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 256 || entries[0].Name() != "00" || entries[255].Name() != "ff" || !entries[255].IsDir() {
			t.Fatalf("blobs/%s holds %d entries, want the 256 directories 00..ff", alg, len(entries))
		}
	}
}

// commitWatched commits a small blob through s, recording each directory
// sync and whether the blob was at its final path when it ran.
func commitWatched(t *testing.T, s *Store, id string) (digest.Digest, []string) {
	t.Helper()
	data := bytes.Repeat([]byte{byte(len(id))}, 1024)
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
	return d, synced
}

// A small blob's commit syncs one directory, its own, and only once the
// rename is done: that sync is what makes the blob durable before the
// commit returns (and the registry answers 201).
func TestCommitUpload_SyncsOnlyItsOwnDirectoryAfterTheRename(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, synced := commitWatched(t, s, "first")
	want := []string{filepath.Join(s.blobs, "sha256", d.Encoded()[:2]) + " (blob in place)"}
	if !slices.Equal(synced, want) {
		t.Fatalf("directory syncs %q, want %q", synced, want)
	}
}

// A fan-out directory removed behind the store's back is made again, and
// its parent synced, before the blob is renamed into it.
func TestCommitUpload_RemakesAMissingFanOutDirectory(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{byte(len("gone"))}, 1024)
	d := digest.FromBytes(data)
	dir := filepath.Join(s.blobs, "sha256", d.Encoded()[:2])
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	got, synced := commitWatched(t, s, "gone")
	if got != d {
		t.Fatalf("committed %s, want %s", got, d)
	}
	want := []string{filepath.Join(s.blobs, "sha256") + " (blob absent)", dir + " (blob in place)"}
	if !slices.Equal(synced, want) {
		t.Fatalf("directory syncs %q, want %q", synced, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, d.Encoded())); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("blob after commit: %v", err)
	}
}
