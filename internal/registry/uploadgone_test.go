package registry_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf/wharf/internal/registry"
)

// A chunk for a session whose bytes have vanished from the upload area is
// BLOB_UPLOAD_UNKNOWN (the client starts the blob again), not a 500.
func TestWriteUpload_SessionWithoutItsBytesIsUploadUnknown(t *testing.T) {
	ctx := t.Context()
	w := newJanitorWorld(t)
	up, err := w.svc.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	// Larger than a small blob, which the session's record would keep.
	first := bytes.Repeat([]byte("first"), 20<<10)
	if _, err := w.svc.WriteUpload(ctx, "team/app", up.ID, 0, bytes.NewReader(first), int64(len(first))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(w.uploads, up.ID)); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.WriteUpload(ctx, "team/app", up.ID, int64(len(first)), bytes.NewReader([]byte("second")), 6)
	if !errors.Is(err, registry.ErrUploadUnknown) {
		t.Fatalf("WriteUpload after the upload file went: %v; want ErrUploadUnknown", err)
	}
}
