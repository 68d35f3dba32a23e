package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

// sharedStores is one PostgreSQL database and one bucket, as the replicas
// of a scaled-out registry share them.
type sharedStores struct {
	dbURL  string
	s3     *servicetest.S3
	bucket string
}

func newSharedStores(t *testing.T) *sharedStores {
	t.Helper()
	srv := servicetest.StartS3(t)
	return &sharedStores{dbURL: servicetest.StartPostgres(t).Database(t), s3: srv, bucket: srv.Bucket(t)}
}

// blobStore opens the bucket with a client of its own.
func (w *sharedStores) blobStore(t *testing.T) *s3.Store {
	t.Helper()
	blobs, err := s3.New(t.Context(), s3.Config{
		Bucket: w.bucket, Endpoint: w.s3.Endpoint, Region: w.s3.Region, PathStyle: true,
		AccessKey: w.s3.AccessKey, SecretKey: w.s3.SecretKey,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return blobs
}

// replica opens a Service on the shared stores with connections of its
// own, as another `wharf serve` would. now is its clock (nil: time.Now).
func (w *sharedStores) replica(t *testing.T, now func() time.Time) *registry.Service {
	t.Helper()
	var opts []sqldb.Option
	if now != nil {
		opts = append(opts, sqldb.WithClock(now))
	}
	meta, err := sqldb.Open(t.Context(), w.dbURL, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	return registry.New(meta, w.blobStore(t), slog.New(slog.DiscardHandler), registry.Options{Now: now})
}

// keptInDatabase reports whether the shared database keeps d's bytes (a
// small blob).
func (w *sharedStores) keptInDatabase(t *testing.T, d digest.Digest) bool {
	t.Helper()
	meta, err := sqldb.Open(t.Context(), w.dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	_, err = meta.SmallBlob(t.Context(), d)
	if err != nil && !errors.Is(err, metadata.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// testImage is an image manifest and the blobs it references.
type testImage struct {
	blobs    map[digest.Digest][]byte
	order    []digest.Digest // config first
	manifest []byte
}

func newTestImage(config []byte, layers ...[]byte) *testImage {
	img := &testImage{blobs: map[digest.Digest][]byte{}}
	desc := func(mediaType string, b []byte) string {
		d := digest.FromBytes(b)
		img.blobs[d] = b
		img.order = append(img.order, d)
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mediaType, d, len(b))
	}
	cfg := desc("application/vnd.oci.image.config.v1+json", config)
	var ls []string
	for _, l := range layers {
		ls = append(ls, desc("application/vnd.oci.image.layer.v1.tar", l))
	}
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}`,
		cfg, strings.Join(ls, ",")))
	return img
}

func (img *testImage) digest() digest.Digest { return digest.FromBytes(img.manifest) }

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// push uploads every blob of img (monolithically) and its manifest.
func (img *testImage) push(ctx context.Context, svc *registry.Service, repo, tag string) error {
	for _, d := range img.order {
		b := img.blobs[d]
		if _, err := svc.PutBlob(ctx, repo, d, strings.NewReader(string(b)), int64(len(b))); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	_, err := svc.PutManifest(ctx, repo, tag, ociManifest, img.manifest, nil)
	return err
}

// readBlob reads blob d of repo and checks its digest.
func readBlob(ctx context.Context, svc *registry.Service, repo string, d digest.Digest) error {
	r, _, err := svc.OpenBlob(ctx, repo, d)
	if err != nil {
		return err
	}
	defer r.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, r); err != nil {
		return err
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: wrong content", d)
	}
	return nil
}

// On PostgreSQL + S3, a collection deletes from the bucket the objects of
// blobs nothing references (a layer whose push never sent its manifest, the
// blobs of a deleted image) and keeps the referenced and the recent ones;
// a later push of a collected blob stores it again.
func TestCollectGarbage_OnPostgresAndS3_RemovesUnreferencedObjects(t *testing.T) {
	ctx := t.Context()
	w := newSharedStores(t)
	clock := clocktest.New()
	svc := w.replica(t, clock.Now)
	bucket := w.blobStore(t)

	// Layers larger than the small blobs kept in the database, as real
	// ones are, so that their bytes are objects; the configs are small.
	big := func(s string) []byte { return bytes.Repeat([]byte(s), registry.DefaultSmallBlobMax/len(s)+1) }
	stored := func(d digest.Digest) bool {
		_, err := bucket.Stat(ctx, d)
		if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil || w.keptInDatabase(t, d)
	}
	kept := newTestImage([]byte(`{"kept":1}`), big("kept layer"), big("shared layer"))
	if err := kept.push(ctx, svc, "team/app", "v1"); err != nil {
		t.Fatal(err)
	}
	deleted := newTestImage([]byte(`{"deleted":1}`), big("deleted layer"), big("shared layer"))
	if err := deleted.push(ctx, svc, "team/other", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteManifest(ctx, "team/other", deleted.digest().String()); err != nil {
		t.Fatal(err)
	}
	abandoned := big("layer of a push that never sent its manifest")
	abandonedD := digest.FromBytes(abandoned)
	if _, err := svc.PutBlob(ctx, "team/app", abandonedD, strings.NewReader(string(abandoned)), int64(len(abandoned))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	recent := big("layer of a push under way")
	recentD := digest.FromBytes(recent)
	if _, err := svc.PutBlob(ctx, "team/app", recentD, strings.NewReader(string(recent)), int64(len(recent))); err != nil {
		t.Fatal(err)
	}

	rep, err := svc.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatalf("CollectGarbage: %v", err)
	}
	// The deleted image's config and own layer, and the abandoned layer.
	gone := []digest.Digest{deleted.order[0], deleted.order[1], abandonedD}
	var goneBytes int64
	for _, d := range gone {
		if stored(d) {
			t.Errorf("unreferenced blob %s is still stored; want it deleted", d)
		}
		goneBytes += int64(len(deleted.blobs[d]))
	}
	goneBytes += int64(len(abandoned))
	if rep.Blobs != len(gone) || rep.Bytes != goneBytes {
		t.Errorf("report: %d blobs, %d bytes; want %d, %d", rep.Blobs, rep.Bytes, len(gone), goneBytes)
	}
	for _, d := range append(kept.order, recentD) {
		if !stored(d) {
			t.Errorf("blob %s is gone; want it kept", d)
		}
	}
	for _, d := range kept.order {
		if err := readBlob(ctx, svc, "team/app", d); err != nil {
			t.Errorf("pull of a kept blob: %v", err)
		}
	}
	if again, err := svc.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour}); err != nil || again.Blobs != 0 {
		t.Errorf("second collection = %+v, %v; want nothing removed", again, err)
	}

	// Pushed again, a collected blob is stored again.
	if err := deleted.push(ctx, svc, "team/other", "v2"); err != nil {
		t.Fatalf("push after collection: %v", err)
	}
	for _, d := range deleted.order {
		if err := readBlob(ctx, svc, "team/other", d); err != nil {
			t.Errorf("pull after collection and push: %v", err)
		}
	}
}

// A dry run on S3 reports what a collection would delete, and deletes nothing.
func TestCollectGarbage_OnPostgresAndS3_DryRunDeletesNothing(t *testing.T) {
	ctx := t.Context()
	w := newSharedStores(t)
	clock := clocktest.New()
	svc := w.replica(t, clock.Now)
	b := []byte("abandoned")
	d := digest.FromBytes(b)
	if _, err := svc.PutBlob(ctx, "team/app", d, strings.NewReader(string(b)), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	rep, err := svc.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour, DryRun: true})
	if err != nil || rep.Blobs != 1 || rep.Bytes != int64(len(b)) || rep.Links != 1 {
		t.Fatalf("dry run = %+v, %v; want 1 link and 1 blob of %d bytes", rep, err, len(b))
	}
	if err := readBlob(ctx, svc, "team/app", d); err != nil {
		t.Fatalf("after a dry run: %v", err)
	}
}
