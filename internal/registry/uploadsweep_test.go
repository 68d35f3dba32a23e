package registry_test

import (
	"bytes"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

// uploadArea lists the bucket's upload area the way the test sees it,
// with a client of its own: object keys, and "mpu <key>" per unfinished
// multipart upload.
func uploadArea(t *testing.T, srv *servicetest.S3, bucket string) []string {
	t.Helper()
	client, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: srv.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for o := range client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: "uploads/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o.Key)
	}
	for m := range client.ListIncompleteUploads(t.Context(), bucket, "uploads/", true) {
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		out = append(out, "mpu "+m.Key)
	}
	slices.Sort(out)
	return out
}

// The janitor on S3 removes, once older than the purge age, what no
// recorded state names: a stale writer's tail and a racing first writer's
// multipart upload in a live session's area, and the multipart upload and
// tail of a session that was deleted without them. The live session's own
// objects stay, and it completes with the right digest.
func TestPurgeStaleUploads_OnS3_RemovesObjectsNoRecordedStateNames(t *testing.T) {
	const mib = 1 << 20
	const maxAge = time.Hour
	ctx := t.Context()
	srv := servicetest.StartS3(t)
	bucket := srv.Bucket(t)
	log := slog.New(slog.DiscardHandler)
	blobs, err := s3.New(ctx, s3.Config{
		Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: 5 * mib,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqldb.OpenSQLite(ctx, filepath.Join(t.TempDir(), "wharf.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	clock := clocktest.New()
	svc := registry.New(meta, blobs, log, registry.Options{Now: clock.Now})

	b := make([]byte, 9*mib+7)
	_, _ = mrand.NewChaCha8([32]byte{3}).Read(b)
	recorded := func(id string) (int64, blobstore.State) {
		t.Helper()
		u, err := meta.GetUpload(ctx, "team/app", id)
		if err != nil {
			t.Fatal(err)
		}
		return u.Offset, u.StoreState
	}
	// staleWrite writes p from the session's recorded state, as a writer
	// that lost its lease does, and never gets its state recorded.
	staleWrite := func(id string, p []byte, abort bool) {
		t.Helper()
		off, state := recorded(id)
		w, err := blobs.WriteUpload(ctx, id, off, state)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if abort {
			w.(blobstore.Aborter).Abort()
		} else if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A session deleted without its objects: a whole part and a tail.
	dead, err := svc.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WriteUpload(ctx, "team/app", dead.ID, 0, bytes.NewReader(b[:6*mib]), 6*mib); err != nil {
		t.Fatal(err)
	}
	if err := meta.DeleteUpload(ctx, "team/app", dead.ID); err != nil {
		t.Fatal(err)
	}

	live, err := svc.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WriteUpload(ctx, "team/app", live.ID, 0, bytes.NewReader(b[:3*mib]), 3*mib); err != nil {
		t.Fatal(err)
	}
	// The loser of two racing first writes: it sent a whole part, so it
	// started a multipart upload that the recorded state never names.
	staleWrite(live.ID, bytes.Repeat([]byte{0xee}, 3*mib), true)

	before := uploadArea(t, srv, bucket)
	if n, err := svc.PurgeStaleUploads(ctx, maxAge); err != nil || n != 0 {
		t.Fatalf("purge within the purge age removed %d, %v; want 0", n, err)
	}
	if got := uploadArea(t, srv, bucket); !slices.Equal(got, before) {
		t.Fatalf("upload area within the purge age:\n%v\nwant it as it was:\n%v", got, before)
	}

	clock.Advance(maxAge + time.Minute)
	// The live session writes on (so it is not stale), and a writer that
	// lost its lease leaves a tail after it.
	if _, err := svc.WriteUpload(ctx, "team/app", live.ID, 3*mib, bytes.NewReader(b[3*mib:4*mib]), mib); err != nil {
		t.Fatal(err)
	}
	staleWrite(live.ID, []byte("stale writer's bytes"), false)
	_, liveState := recorded(live.ID)

	n, err := svc.PurgeStaleUploads(ctx, maxAge)
	if err != nil || n != 4 {
		t.Fatalf("purge after the purge age removed %d, %v; want 4 (racing writer's multipart upload, stale tail, dead session's multipart upload and tail)", n, err)
	}
	var want []string
	for _, k := range uploadArea(t, srv, bucket) {
		if !strings.HasPrefix(k, "uploads/"+live.ID+"/") {
			t.Errorf("left in the upload area: %s", k)
			continue
		}
		want = append(want, k)
	}
	// What is left is the tail the live state names (the stale writer
	// removed the tail it replaced, as a write from a recorded state does);
	// the completion below reads it.
	if len(want) != 1 {
		t.Errorf("live session's objects after the purge: %v; want its recorded tail (state %s)", want, liveState)
	}

	d := digest.FromBytes(b)
	if _, err := svc.CompleteUpload(ctx, "team/app", live.ID, d, bytes.NewReader(b[4*mib:]), int64(len(b)-4*mib)); err != nil {
		t.Fatalf("CompleteUpload after the purge: %v", err)
	}
	r, size, err := svc.OpenBlob(ctx, "team/app", d)
	if err != nil || size != int64(len(b)) {
		t.Fatalf("OpenBlob = %d, %v", size, err)
	}
	defer r.Close()
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("blob: %d bytes, %v; want the %d pushed", len(got), err, len(b))
	}
}
