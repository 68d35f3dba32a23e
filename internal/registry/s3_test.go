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

	"github.com/wharf/wharf/internal/blobstore"
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
	log := slog.New(slog.DiscardHandler)
	blobs, meta := s3Stores(t, servicetest.StartS3(t), s3.Config{PartSize: 5 * mib})
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

// A replica that dies after the S3 driver placed the blob of a final PUT,
// but before the session's end was recorded, leaves the session as its
// last PATCH recorded it. The client's retried PUT, on any replica, must
// finish the upload from the placed blob, whether or not it carries a
// last chunk, and however that chunk fell across parts.
func TestUpload_OnS3_RetriedPutAfterCrashBetweenPlaceAndRecord(t *testing.T) {
	const mib = 1 << 20
	srv := servicetest.StartS3(t)
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name          string
		size, patched int // the blob's bytes, and how many the PATCH sent
	}{
		{"last chunk in the PUT, no whole part", 3000, 1000},
		{"last chunk in the PUT, across a part", 12*mib + 5, 4 * mib},
		{"last chunk in the PUT, after whole parts", 12*mib + 5, 11 * mib},
		{"PUT without a body", 12*mib + 5, 12*mib + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobs, meta := s3Stores(t, srv, s3.Config{PartSize: 5 * mib})
			// No small blobs: a first PATCH of a few bytes would be kept in
			// the session's record, not in the bucket this test is about.
			svc := registry.New(meta, blobs, log, registry.Options{SmallBlobMax: -1})
			ctx := t.Context()

			b := make([]byte, tc.size)
			_, _ = mrand.NewChaCha8([32]byte{7}).Read(b)
			d := digest.FromBytes(b)
			up, err := svc.StartUpload(ctx, "team/app", "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.WriteUpload(ctx, "team/app", up.ID, 0, bytes.NewReader(b[:tc.patched]), int64(tc.patched)); err != nil {
				t.Fatal(err)
			}
			// What the dying replica's PUT did to the bucket: appended the
			// last chunk to the recorded state and placed the blob.
			recorded, err := meta.GetUpload(ctx, "team/app", up.ID)
			if err != nil {
				t.Fatal(err)
			}
			w, err := blobs.WriteUpload(ctx, up.ID, recorded.Offset, recorded.StoreState)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(b[tc.patched:]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := blobs.CommitUpload(ctx, up.ID, w.State(), d, int64(len(b))); err != nil {
				t.Fatal(err)
			}

			var last io.Reader
			if tc.patched < tc.size {
				last = bytes.NewReader(b[tc.patched:])
			}
			if _, err := svc.CompleteUpload(ctx, "team/app", up.ID, d, last, int64(tc.size-tc.patched)); err != nil {
				t.Fatalf("retried PUT: %v", err)
			}
			r, size, err := svc.OpenBlob(ctx, "team/app", d)
			if err != nil || size != int64(len(b)) {
				t.Fatalf("OpenBlob = %d, %v", size, err)
			}
			defer r.Close()
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("blob: %d bytes, %v; want the %d pushed", len(got), err, len(b))
			}
			if _, err := svc.UploadStatus(ctx, "team/app", up.ID); !errors.Is(err, registry.ErrUploadUnknown) {
				t.Errorf("session after the retry: %v, want ErrUploadUnknown", err)
			}
		})
	}
}

// On S3, a small blob sent in one PATCH to a session recorded at its POST
// (as on PostgreSQL) is kept in the database: nothing of it reaches the
// bucket, neither the blob nor an upload's object.
func TestSmallBlob_OnS3_RecordedSessionSendsNothingToTheBucket(t *testing.T) {
	blobs, meta := s3Stores(t, servicetest.StartS3(t), s3.Config{})
	// No upload key: every session is recorded at its POST.
	svc := registry.New(meta, blobs, slog.New(slog.DiscardHandler), registry.Options{})
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	pushPatched(t, svc, "team/app", config, -1)
	d := digest.FromBytes(config)
	if _, err := meta.SmallBlob(t.Context(), d); err != nil {
		t.Errorf("the blob's record does not hold its bytes: %v", err)
	}
	if _, err := blobs.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat in the bucket = %v; want not found", err)
	}
	err := blobs.WalkUploadObjects(t.Context(), func(o blobstore.UploadObject) error {
		t.Errorf("the bucket holds an upload's object: %+v", o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantBlob(t, svc, "team/app", config)
}

// s3Stores returns a blob store on a new bucket of srv, with cfg's part
// size, and a SQLite metadata store.
func s3Stores(t *testing.T, srv *servicetest.S3, cfg s3.Config) (*s3.Store, *sqldb.DB) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg.Bucket, cfg.Endpoint, cfg.Region, cfg.PathStyle = srv.Bucket(t), srv.Endpoint, srv.Region, true
	cfg.AccessKey, cfg.SecretKey = srv.AccessKey, srv.SecretKey
	blobs, err := s3.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqldb.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "wharf.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	return blobs, meta
}
