package server_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/servicetest"
)

const mib = 1 << 20

// onS3 runs a server on a fresh bucket of srv with 5 MiB parts, so that a
// few MiB of chunks cross part boundaries.
func onS3(srv *servicetest.S3, bucket string) registrytest.Option {
	return registrytest.WithConfig(func(c *config.Config) {
		c.Storage.URL = fmt.Sprintf("s3://%s/wharf?endpoint=%s&region=%s&path_style=true&part_size=%d",
			bucket, url.QueryEscape(srv.Endpoint), srv.Region, 5*mib)
		c.Storage.S3.AccessKey, c.Storage.S3.SecretKey = srv.AccessKey, srv.SecretKey
	})
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func sha256Digest(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:]))
}

// do sends one request and returns the response with its body read.
func do(t *testing.T, method, u string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return resp, b
}

// uploadPath is the path of an upload session's Location, so that the
// session can be continued on any replica.
func uploadPath(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path == "" {
		t.Fatalf("Location %q: %v", resp.Header.Get("Location"), err)
	}
	return loc.RequestURI()
}

// chunkedPush uploads b as blob d to repo: POST on servers[0], then one
// PATCH per chunk size on the servers in turn (wrapping round), then the
// rest of the bytes in the final PUT on last.
func chunkedPush(t *testing.T, servers []*registrytest.Server, last *registrytest.Server, repo string, b []byte, d digest.Digest, chunks ...int) {
	t.Helper()
	resp, body := do(t, http.MethodPost, servers[0].URL+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload = %d %s", resp.StatusCode, body)
	}
	path := uploadPath(t, resp)
	at := 0
	for i, n := range chunks {
		srv := servers[i%len(servers)]
		resp, body = do(t, http.MethodPatch, srv.URL+path, b[at:at+n], map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", at, at+n-1),
		})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d-%d on server %d = %d %s", at, at+n-1, i%len(servers), resp.StatusCode, body)
		}
		if want := fmt.Sprintf("0-%d", at+n-1); resp.Header.Get("Range") != want {
			t.Fatalf("PATCH %d-%d: Range %q; want %q", at, at+n-1, resp.Header.Get("Range"), want)
		}
		path = uploadPath(t, resp)
		at += n
	}
	resp, body = do(t, http.MethodPut, s3PutURL(t, last, path, d), b[at:], map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s with the last %d bytes = %d %s", d, len(b)-at, resp.StatusCode, body)
	}
}

// putURL is the final PUT's URL for the session at path on srv.
func s3PutURL(t *testing.T, srv *registrytest.Server, path string, d digest.Digest) string {
	t.Helper()
	u, err := url.Parse(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// wantBlobFrom checks that srv serves exactly b as blob d of repo.
func wantBlobFrom(t *testing.T, srv *registrytest.Server, repo string, d digest.Digest, b []byte) {
	t.Helper()
	resp, got := do(t, http.MethodGet, srv.URL+"/v2/"+repo+"/blobs/"+d.String(), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s = %d %s", d, resp.StatusCode, got)
	}
	if !bytes.Equal(got, b) {
		t.Fatalf("GET blob %s: %d bytes that differ from the %d pushed", d, len(got), len(b))
	}
}

// TestS3_ChunkedPushPullsBackByteIdentical pushes a three-layer image to a
// wharf on versitygw and SQLite in chunks that cross 5 MiB parts and end
// mid-part, one layer by sha512 (which the session does not hash, so the
// commit reads the upload back from the bucket), and pulls it all back.
func TestS3_ChunkedPushPullsBackByteIdentical(t *testing.T) {
	s3srv := servicetest.StartS3(t)
	srv := registrytest.NewServer(t, onS3(s3srv, s3srv.Bucket(t)))
	servers := []*registrytest.Server{srv}
	const repo = "team/app"

	layers := [][]byte{randomBytes(12*mib+3, 1), randomBytes(7*mib, 2), randomBytes(100, 3)}
	digests := []digest.Digest{sha256Digest(layers[0]), "", sha256Digest(layers[2])}
	sum := sha512.Sum512(layers[1])
	digests[1] = digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
	chunkedPush(t, servers, srv, repo, layers[0], digests[0], 3*mib+1, 3*mib+1, 5*mib) // parts cross at 5 and 10 MiB
	chunkedPush(t, servers, srv, repo, layers[1], digests[1], 6*mib)                   // one part and a tail, then the rest in the PUT
	chunkedPush(t, servers, srv, repo, layers[2], digests[2], 40)                      // never a whole part

	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cfgDigest := sha256Digest(cfg)
	chunkedPush(t, servers, srv, repo, cfg, cfgDigest)
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, "application/vnd.oci.image.manifest.v1+json", desc{"application/vnd.oci.image.config.v1+json", cfgDigest, len(cfg)}, nil}
	for i, l := range layers {
		m.Layers = append(m.Layers, desc{"application/vnd.oci.image.layer.v1.tar", digests[i], len(l)})
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, http.MethodPut, srv.URL+"/v2/"+repo+"/manifests/v1", manifest, map[string]string{"Content-Type": m.MediaType})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest = %d %s", resp.StatusCode, body)
	}

	resp, got := do(t, http.MethodGet, srv.URL+"/v2/"+repo+"/manifests/v1", nil, map[string]string{"Accept": m.MediaType})
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, manifest) {
		t.Fatalf("GET manifest = %d, %d bytes; want the %d pushed", resp.StatusCode, len(got), len(manifest))
	}
	wantBlobFrom(t, srv, repo, cfgDigest, cfg)
	for i, l := range layers {
		wantBlobFrom(t, srv, repo, digests[i], l)
	}
	// The bytes are in the bucket, not in the data directory.
	if _, err := os.Stat(filepath.Join(srv.DataDir, "blobs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the data directory has a blobs directory (stat error %v); the server should be on S3", err)
	}
	// A range of the largest layer comes back as a range.
	resp, got = do(t, http.MethodGet, srv.URL+"/v2/"+repo+"/blobs/"+digests[0].String(), nil, map[string]string{"Range": "bytes=5242879-5242888"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, layers[0][5*mib-1:5*mib+9]) {
		t.Fatalf("GET a range across the first part = %d, %q", resp.StatusCode, got)
	}
}

// TestS3_ReplicasOnPostgres_UploadMovesBetweenReplicas: two wharf servers
// share one PostgreSQL database and one bucket. An upload started on A
// gets its PATCHes on B and its last chunk and PUT on A: the progress
// (multipart upload, parts, tail) lives in the database, not in either
// process. The blob then pulls from both.
func TestS3_ReplicasOnPostgres_UploadMovesBetweenReplicas(t *testing.T) {
	s3srv := servicetest.StartS3(t)
	bucket := s3srv.Bucket(t)
	dbURL := servicetest.StartPostgres(t).Database(t)
	shared := []registrytest.Option{onS3(s3srv, bucket), registrytest.WithConfig(func(c *config.Config) { c.Database.URL = dbURL })}
	a, b := registrytest.NewServer(t, shared...), registrytest.NewServer(t, shared...)
	const repo = "team/shared"

	blob := randomBytes(11*mib+17, 4)
	d := sha256Digest(blob)
	// POST on A, PATCHes on B (chunks cross the 5 MiB part boundaries),
	// the rest with the PUT on A.
	resp, body := do(t, http.MethodPost, a.URL+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST on a = %d %s", resp.StatusCode, body)
	}
	path := uploadPath(t, resp)
	at := 0
	for _, n := range []int{4*mib + 1, 3 * mib, 2*mib + 5} {
		resp, body = do(t, http.MethodPatch, b.URL+path, blob[at:at+n], map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", at, at+n-1)})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d-%d on b = %d %s", at, at+n-1, resp.StatusCode, body)
		}
		path = uploadPath(t, resp)
		at += n
	}
	// A sees B's progress.
	resp, body = do(t, http.MethodGet, a.URL+path, nil, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != "0-"+strconv.Itoa(at-1) {
		t.Fatalf("GET upload status on a = %d, Range %q %s; want 204, 0-%d", resp.StatusCode, resp.Header.Get("Range"), body, at-1)
	}
	resp, body = do(t, http.MethodPut, s3PutURL(t, a, path, d), blob[at:], map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT on a = %d %s", resp.StatusCode, body)
	}
	wantBlobFrom(t, a, repo, d, blob)
	wantBlobFrom(t, b, repo, d, blob)

	// And the other way round, with chunkedPush's alternation: POST on B,
	// PATCHes on B, A, B, PUT on B.
	other := randomBytes(6*mib+1, 5)
	od := sha256Digest(other)
	chunkedPush(t, []*registrytest.Server{b, a}, b, repo, other, od, 5*mib-1, 2, 3)
	wantBlobFrom(t, a, repo, od, other)
	wantBlobFrom(t, b, repo, od, other)
}
