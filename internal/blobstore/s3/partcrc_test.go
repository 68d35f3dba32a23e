package s3

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/wharf/wharf/internal/servicetest"
)

// flipAfter corrupts one byte of what it reads, after the CRC reader
// inside it has summed it: the bytes on the wire then differ from the
// trailer's checksum, as if the network had changed them.
type flipAfter struct {
	r       io.Reader
	at, off int
}

func (f *flipAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+n {
		p[f.at-f.off] ^= 0xff
	}
	f.off += n
	return n, err
}

func TestCRCPart_StoreKeepsAnIntactPartAndRefusesACorruptedOne(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	key := s.dataKey("crc-test")
	mpu, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, key, mpu)
	b := data(testPart, 7)

	body, opts := CRCPart(&flipAfter{r: bytes.NewReader(b), at: -1})
	if _, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, key, mpu, 1, body, int64(len(b)), opts); err != nil {
		t.Fatalf("intact part: %v", err)
	}

	// The corruption must sit outside the CRC reader, which is where the
	// network is.
	crcBody, opts := CRCPart(bytes.NewReader(b))
	_, err = s.core.PutObjectPart(ctx, s.cfg.Bucket, key, mpu, 2, &flipAfter{r: crcBody, at: len(b) / 2}, int64(len(b)), opts)
	if err == nil {
		t.Fatal("a part whose bytes do not match its CRC32C trailer was stored")
	}
	t.Logf("corrupted part refused: %v", err)
	parts, err := s.core.ListObjectParts(ctx, s.cfg.Bucket, key, mpu, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.ObjectParts) != 1 || parts.ObjectParts[0].PartNumber != 1 {
		t.Fatalf("parts stored = %+v, want part 1 only", parts.ObjectParts)
	}
}

// trailerRefuser is a front to the S3 gateway that answers any request
// carrying a trailer as a store without them would, and passes the rest.
func trailerRefuser(t *testing.T, endpoint string) (url string, refused *atomic.Int64) {
	t.Helper()
	target, err := neturl.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	refused = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Trailer") != "" {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented`+
				`</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, refused
}

// A store that refuses parts with a CRC32C trailer is found at start,
// and then gets parts with signed payloads: a chunked upload across
// parts still becomes its blob.
func TestNew_StoreWithoutTrailersGetsSignedParts(t *testing.T) {
	srv := servicetest.StartS3(t)
	front, refused := trailerRefuser(t, srv.Endpoint)
	cfg := Config{
		Bucket: srv.Bucket(t), Endpoint: front, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: testPart,
	}
	s, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !s.signedParts || refused.Load() == 0 {
		t.Fatalf("signedParts = %v after %d refusals; want parts signed after the probe's part was refused", s.signedParts, refused.Load())
	}
	b := data(2*testPart+123, 9)
	d := sha256Of(b)
	state, err := s.StartUpload(t.Context(), "signed")
	if err != nil {
		t.Fatal(err)
	}
	state = writeChunk(t, s, "signed", state, b)
	if err := s.CommitUpload(t.Context(), "signed", state, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, s, d, b)
	before := refused.Load()

	// The store that takes trailers gets them.
	direct, _ := newStore(t)
	if direct.signedParts {
		t.Error("versitygw's parts go signed; it takes CRC32C trailers")
	}
	if refused.Load() != before {
		t.Errorf("%d more parts refused after the probe", refused.Load()-before)
	}
}
