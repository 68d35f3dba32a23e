package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

// failingReader yields its bytes, then an error: a client cut off
// mid-chunk.
type failingReader struct{ r io.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("connection reset")
	}
	return n, err
}

// A chunk that fails after the S3 driver has sent a whole part of wrong
// bytes leaves the session where it was recorded; the retry, from the
// recorded store state, re-sends that part, and the blob holds exactly the
// right bytes.
func TestUpload_OnS3_RetryAfterFailedChunkReplacesItsParts(t *testing.T) {
	const mib = 1 << 20
	srv := servicetest.StartS3(t)
	log := slog.New(slog.DiscardHandler)
	blobs, err := s3.New(t.Context(), s3.Config{
		Bucket: srv.Bucket(t), Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: 5 * mib,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqldb.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "wharf.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	svc := registry.New(meta, blobs, log, registry.Options{})
	ctx := t.Context()

	b := make([]byte, 12*mib+5)
	_, _ = mrand.NewChaCha8([32]byte{9}).Read(b)
	junk := bytes.Repeat([]byte{0xee}, 4*mib)

	up, err := svc.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WriteUpload(ctx, "team/app", up.ID, 0, bytes.NewReader(b[:3*mib]), 3*mib); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	// 3 MiB + 4 MiB of junk: part 1 (0–5 MiB) goes to S3 with 2 MiB of it.
	if _, err := svc.WriteUpload(ctx, "team/app", up.ID, 3*mib, failingReader{bytes.NewReader(junk)}, -1); err == nil {
		t.Fatal("a chunk whose body failed was accepted")
	}
	if st, err := svc.UploadStatus(ctx, "team/app", up.ID); err != nil || st.Offset != 3*mib {
		t.Fatalf("after the failed chunk: offset %+v, %v; want %d", st, err, 3*mib)
	}
	if _, err := svc.WriteUpload(ctx, "team/app", up.ID, 3*mib, bytes.NewReader(b[3*mib:9*mib]), 6*mib); err != nil {
		t.Fatalf("retried chunk: %v", err)
	}
	d := digest.FromBytes(b)
	if _, err := svc.CompleteUpload(ctx, "team/app", up.ID, d, bytes.NewReader(b[9*mib:]), int64(len(b)-9*mib)); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	r, size, err := svc.OpenBlob(ctx, "team/app", d)
	if err != nil || size != int64(len(b)) {
		t.Fatalf("OpenBlob = %d, %v", size, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("blob: %d bytes, %v; want the %d pushed", len(got), err, len(b))
	}
}
