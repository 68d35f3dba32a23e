package registry_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

// BenchmarkPatchOnPostgres appends 64 KiB chunks to one session on
// PostgreSQL (and a filesystem blob store, so that the database's share
// shows): the cost of a chunk's claim and advance.
func BenchmarkPatchOnPostgres(b *testing.B) {
	const chunk = 64 << 10
	log := slog.New(slog.DiscardHandler)
	meta, err := sqldb.OpenPostgres(b.Context(), servicetest.StartPostgres(b).Database(b), log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = meta.Close() })
	blobs, err := fs.New(filepath.Join(b.TempDir(), "blobs"), log)
	if err != nil {
		b.Fatal(err)
	}
	svc := registry.New(meta, blobs, log, registry.Options{})
	up, err := svc.StartUpload(b.Context(), "bench/patch", "")
	if err != nil {
		b.Fatal(err)
	}
	content := bytes.Repeat([]byte{'w'}, chunk)
	b.SetBytes(chunk)
	off := int64(0)
	for b.Loop() {
		if _, err := svc.WriteUpload(b.Context(), "bench/patch", up.ID, off, bytes.NewReader(content), chunk); err != nil {
			b.Fatal(err)
		}
		off += chunk
	}
}
