package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSyncTree_SyncsEveryFileAndDirectory: the other tools' pulls are timed
// until their output is durable, which counts only if every file and every
// directory (for the names in it) is synced.
func TestSyncTree_SyncsEveryFileAndDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"index.json", "oci-layout", "blobs/sha256/aa", "blobs/sha256/bb"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, err := syncTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 { // 4 files; dir, blobs, blobs/sha256
		t.Errorf("synced %d paths, want 7", n)
	}
	if _, err := syncTree(filepath.Join(dir, "missing")); err == nil {
		t.Error("syncTree of a missing directory succeeded; a tool that wrote nothing must not pass")
	}
}
