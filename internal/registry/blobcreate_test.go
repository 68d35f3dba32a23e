package registry_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

// s3Request is one request wharf's S3 driver sent, as the recorder saw it.
type s3Request struct {
	Method, Key string
	Copy        bool // a server-side copy (x-amz-copy-source)
}

// s3Recorder is a reverse proxy in front of versitygw that records what
// the S3 driver asks of it, so that a test can tell a copy from a write.
// It passes the Host header on unchanged, so signatures still verify.
type s3Recorder struct {
	mu   sync.Mutex
	reqs []s3Request
}

func (r *s3Recorder) take() []s3Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// writes are the requests that store bytes or change objects.
func writes(reqs []s3Request) []s3Request {
	var out []s3Request
	for _, q := range reqs {
		if q.Method != http.MethodGet && q.Method != http.MethodHead {
			out = append(out, q)
		}
	}
	return out
}

// directRig is a Service on PostgreSQL and a bucket reached through an
// s3Recorder, with 5 MiB parts, and a client of the bucket that bypasses
// wharf to look at what it holds.
type directRig struct {
	svc    *registry.Service
	rec    *s3Recorder
	raw    *minio.Client
	bucket string
}

func newDirectRig(t *testing.T) *directRig {
	t.Helper()
	const mib = 1 << 20
	srv := servicetest.StartS3(t)
	rig := &directRig{rec: &s3Recorder{}, bucket: srv.Bucket(t)}
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/"+rig.bucket+"/")
		rig.rec.mu.Lock()
		rig.rec.reqs = append(rig.rec.reqs, s3Request{Method: r.Method, Key: key, Copy: r.Header.Get("X-Amz-Copy-Source") != ""})
		rig.rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	log := slog.New(slog.DiscardHandler)
	blobs, err := s3.New(t.Context(), s3.Config{
		Bucket: rig.bucket, Endpoint: front.URL, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: 5 * mib,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqldb.Open(t.Context(), servicetest.StartPostgres(t).Database(t), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	// Small blobs would skip the bucket (smallblobs.go): these tests are
	// about how the bytes of a monolithic push reach it.
	rig.svc = registry.New(meta, blobs, log, registry.Options{SmallBlobMax: -1})
	rig.raw, err = minio.New(target.Host, &minio.Options{
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: srv.Region, BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	rig.rec.take() // the store's start-up probe
	return rig
}

// objects lists every object in the bucket, and every multipart upload
// not completed, straight from versitygw.
func (rig *directRig) objects(t *testing.T) (keys, multipart []string) {
	t.Helper()
	for o := range rig.raw.ListObjects(t.Context(), rig.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	for u := range rig.raw.ListIncompleteUploads(t.Context(), rig.bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		multipart = append(multipart, u.Key)
	}
	return keys, multipart
}

func blobKey(d digest.Digest) string {
	return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded()[:2] + "/" + d.Encoded()
}

// wantOnly checks that the bucket holds exactly the objects keys and no
// unfinished multipart upload.
func (rig *directRig) wantOnly(t *testing.T, keys ...string) {
	t.Helper()
	got, mpus := rig.objects(t)
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) || len(mpus) != 0 {
		t.Errorf("bucket holds %q and multipart uploads %q; want %q and none", got, mpus, keys)
	}
}

func randomBlob(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// monolithic pushes body as blob d into repo, the way the test names: a
// session (POST) whose PUT carries the body, or one POST ?digest=.
func monolithic(t *testing.T, svc *registry.Service, how, repo string, d digest.Digest, body io.Reader, length int64) error {
	t.Helper()
	if how == "POST ?digest=" {
		_, err := svc.PutBlob(t.Context(), repo, d, body, length)
		return err
	}
	up, err := svc.StartUpload(t.Context(), repo, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CompleteUpload(t.Context(), repo, up.ID, d, body, length)
	return err
}

var monolithicWays = []string{"POST then PUT", "POST ?digest="}

// A monolithic push to S3 writes the blob once, at its own key: no object
// in the upload area, no server-side copy, nothing left over; small blobs
// in one PUT, larger ones in parts. Bodies of unknown length too.
func TestMonolithicPush_OnS3_WritesBlobKeyOnlyWithoutCopy(t *testing.T) {
	rig := newDirectRig(t)
	seed := byte(0)
	var stored []string
	for _, how := range monolithicWays {
		for _, size := range []int{3000, 12<<20 + 5} {
			for _, length := range []string{"declared", "unknown"} {
				seed++
				b := randomBlob(size, seed)
				d := digest.FromBytes(b)
				n := int64(len(b))
				if length == "unknown" {
					n = -1
				}
				if err := monolithic(t, rig.svc, how, "team/app", d, bytes.NewReader(b), n); err != nil {
					t.Fatalf("%s, %d bytes, length %s: %v", how, size, length, err)
				}
				for _, q := range writes(rig.rec.take()) {
					// The session's CancelUpload may delete what its state
					// names (here nothing) in the upload area.
					cancel := q.Method == http.MethodDelete && strings.HasPrefix(q.Key, "uploads/")
					if q.Copy || q.Key != blobKey(d) && !cancel {
						t.Errorf("%s, %d bytes: request %+v; want writes to %s only, no copy", how, size, q, blobKey(d))
					}
				}
				stored = append(stored, blobKey(d))
				rig.wantOnly(t, stored...)
				wantBlobBytes(t, rig.svc, "team/app", d, b)
			}
		}
	}
}

// A body that does not hash to the digest the push named leaves nothing
// in the bucket, at that digest's key or anywhere, and the session where
// it was: a retry with the right bytes succeeds.
func TestMonolithicPush_OnS3_DigestMismatchLeavesNothing(t *testing.T) {
	rig := newDirectRig(t)
	for i, how := range monolithicWays {
		for _, size := range []int{3000, 12<<20 + 5} {
			b := randomBlob(size, byte(2*i+1))
			d := digest.FromBytes(b)
			wrong := bytes.Clone(b)
			wrong[len(wrong)-1] ^= 1
			up, err := rig.svc.StartUpload(t.Context(), "team/app", "")
			if err != nil {
				t.Fatal(err)
			}
			if how == "POST ?digest=" {
				_, err = rig.svc.PutBlob(t.Context(), "team/app", d, bytes.NewReader(wrong), int64(len(wrong)))
			} else {
				_, err = rig.svc.CompleteUpload(t.Context(), "team/app", up.ID, d, bytes.NewReader(wrong), int64(len(wrong)))
			}
			if !errors.Is(err, registry.ErrDigestInvalid) {
				t.Fatalf("%s of %d wrong bytes: %v; want ErrDigestInvalid", how, size, err)
			}
			rig.wantOnly(t)
			if st, err := rig.svc.UploadStatus(t.Context(), "team/app", up.ID); err != nil || st.Offset != 0 {
				t.Fatalf("session after the failed PUT: %+v, %v; want offset 0", st, err)
			}
			if _, err := rig.svc.CompleteUpload(t.Context(), "team/app", up.ID, d, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatalf("retried PUT: %v", err)
			}
			rig.wantOnly(t, blobKey(d))
			wantBlobBytes(t, rig.svc, "team/app", d, b)
			if err := rig.svc.DeleteBlob(t.Context(), "team/app", d); err != nil {
				t.Fatal(err)
			}
			if err := rig.raw.RemoveObject(t.Context(), rig.bucket, blobKey(d), minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A body cut off mid-stream, after whole parts went to S3, leaves nothing
// in the bucket; the session stays at offset 0 and can be resumed.
func TestMonolithicPush_OnS3_CutBodyLeavesNothing(t *testing.T) {
	rig := newDirectRig(t)
	b := randomBlob(12<<20+5, 9)
	d := digest.FromBytes(b)
	for _, length := range []int64{int64(len(b)), -1} {
		up, err := rig.svc.StartUpload(t.Context(), "team/app", "")
		if err != nil {
			t.Fatal(err)
		}
		cut := failingReader{bytes.NewReader(b[:11<<20])}
		if _, err := rig.svc.CompleteUpload(t.Context(), "team/app", up.ID, d, cut, length); !errors.Is(err, registry.ErrUploadInvalid) {
			t.Fatalf("PUT cut off (declared length %d): %v; want ErrUploadInvalid", length, err)
		}
		if _, err := rig.svc.PutBlob(t.Context(), "team/app", d, failingReader{bytes.NewReader(b[:11<<20])}, length); !errors.Is(err, registry.ErrUploadInvalid) {
			t.Fatalf("POST ?digest= cut off (declared length %d): %v; want ErrUploadInvalid", length, err)
		}
		rig.wantOnly(t)
		if st, err := rig.svc.UploadStatus(t.Context(), "team/app", up.ID); err != nil || st.Offset != 0 {
			t.Fatalf("session after the cut PUT: %+v, %v; want offset 0", st, err)
		}
		// Resumed as the client chooses: here in chunks.
		if _, err := rig.svc.WriteUpload(t.Context(), "team/app", up.ID, 0, bytes.NewReader(b[:6<<20]), 6<<20); err != nil {
			t.Fatalf("PATCH after the cut PUT: %v", err)
		}
		if _, err := rig.svc.CompleteUpload(t.Context(), "team/app", up.ID, d, bytes.NewReader(b[6<<20:]), int64(len(b)-6<<20)); err != nil {
			t.Fatalf("PUT after the cut PUT: %v", err)
		}
		rig.wantOnly(t, blobKey(d))
		wantBlobBytes(t, rig.svc, "team/app", d, b)
		if err := rig.raw.RemoveObject(t.Context(), rig.bucket, blobKey(d), minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		rig.rec.take()
	}
}

// A monolithic push of a blob the bucket holds already (pushed to another
// repository) writes nothing: the body is only checked against the digest,
// and a body that does not match leaves the stored blob as it was.
func TestMonolithicPush_OnS3_StoredBlobIsNotWrittenAgain(t *testing.T) {
	rig := newDirectRig(t)
	b := randomBlob(12<<20+5, 11)
	d := digest.FromBytes(b)
	if err := monolithic(t, rig.svc, "POST then PUT", "team/app", d, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	rig.rec.take()
	for i, how := range monolithicWays {
		wrong := bytes.Clone(b)
		wrong[0] ^= 1
		if err := monolithic(t, rig.svc, how, "team/other", d, bytes.NewReader(wrong), int64(len(b))); !errors.Is(err, registry.ErrDigestInvalid) {
			t.Fatalf("%s of wrong bytes for a stored blob: %v; want ErrDigestInvalid", how, err)
		}
		repo := "team/copy" + string(rune('a'+i))
		if err := monolithic(t, rig.svc, how, repo, d, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("%s of a stored blob: %v", how, err)
		}
		for _, q := range writes(rig.rec.take()) {
			if strings.HasPrefix(q.Key, "blobs/") || strings.HasPrefix(q.Key, "uploads/") && q.Method != http.MethodDelete {
				t.Errorf("%s of a stored blob sent %+v; want no write", how, q)
			}
		}
		wantBlobBytes(t, rig.svc, repo, d, b)
	}
	rig.wantOnly(t, blobKey(d))
}

func wantBlobBytes(t *testing.T, svc *registry.Service, repo string, d digest.Digest, want []byte) {
	t.Helper()
	r, size, err := svc.OpenBlob(t.Context(), repo, d)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("OpenBlob(%s, %s) = %d, %v; want %d bytes", repo, d, size, err, len(want))
	}
	defer r.Close()
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("blob %s in %s: %d bytes, %v; want the %d pushed", d, repo, len(got), err, len(want))
	}
}
