package fs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// WalkUploads lists the upload files with their last write, and nothing
// else in the upload area: the janitor removes what it lists.
func TestWalkUploads_ListsUploadFilesWithTheirWriteTime(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	for _, id := range []string{"a", "b", "committed"} {
		if _, err := s.StartUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(root, "uploads", "a"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitUpload(ctx, "committed", nil, sha256Of(nil), 0); err != nil {
		t.Fatal(err)
	}
	// Not uploads: a directory and a name no id can have.
	if err := os.Mkdir(filepath.Join(root, "uploads", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "uploads", "x.tmp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	got := map[string]time.Time{}
	if err := s.WalkUploads(ctx, func(id string, written time.Time) error {
		got[id] = written
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["a"].Equal(old) || got["b"].Before(old.Add(time.Hour)) {
		t.Errorf("WalkUploads listed %v; want a (written %v) and b (written now)", got, old)
	}
}
