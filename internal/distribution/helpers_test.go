package distribution_test

// Helpers of the blob and upload tests. Every name here starts with blob
// or upload, so that they cannot clash with the manifest tests' helpers
// in the same package.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

// Fixtures. Everything is deterministic, so digests can be written into
// the tables.
var (
	// blobData is 64 bytes, easy to cut into ranges and chunks by eye.
	blobData      = []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/")
	blobDigest    = digest.FromBytes(blobData)
	blobDigest512 = digest.SHA512.FromBytes(blobData)
	// blobOther is a second blob, for cases that need two.
	blobOther       = []byte("another blob, pushed next to the first")
	blobOtherDigest = digest.FromBytes(blobOther)
	// blobEmptyDigest is the digest of the zero-byte blob.
	blobEmptyDigest = digest.FromBytes(nil)
	// blobNeverPushed is the digest of content no test pushes.
	blobNeverPushed = digest.FromString("content nobody pushed")
)

// blobUUIDRe matches the upload ids the registry hands out: UUIDs of
// recorded sessions, or signed ids (registry/uploadids.go), 32 bytes in
// unpadded base64url.
const blobUUIDRe = `(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z0-9_-]{43})`

// uploadLocationRe matches the Location of an upload session of repo.
func uploadLocationRe(repo string) *regexp.Regexp {
	return regexp.MustCompile(`^/v2/` + regexp.QuoteMeta(repo) + `/blobs/uploads/` + blobUUIDRe + `$`)
}

// blobHeader builds a header from key, value pairs.
func blobHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// blobPath is the blob endpoint of d in repo.
func blobPath(repo string, d digest.Digest) string { return "/v2/" + repo + "/blobs/" + d.String() }

// blobCall is one HTTP request of a test and what it must be answered.
type blobCall struct {
	method string
	// path may hold {upload}, the Location of the latest upload session a
	// response named, and {id}, that session's id.
	path   string
	header http.Header
	body   []byte
	// chunked sends the body with chunked transfer encoding and no
	// Content-Length.
	chunked bool

	wantCode    int
	wantErrCode string
	// wantHeader maps a header to what it must be: a string is its exact
	// value, a *regexp.Regexp must match it, nil means it must be absent.
	wantHeader map[string]any
	// wantBody, when not nil, is the exact response body.
	wantBody []byte
}

// blobCase is a spec of one request: the calls that reach the state it
// needs (each must be answered as it says), the request, and calls that
// check what is stored afterwards.
type blobCase struct {
	name  string
	given []blobCall

	method  string
	path    string
	header  http.Header
	body    []byte
	chunked bool

	wantCode    int
	wantErrCode string
	wantHeader  map[string]any
	wantBody    []byte

	then []blobCall
}

// blobResult is a finished HTTP exchange.
type blobResult struct {
	code   int
	header http.Header
	body   []byte
}

// blobClient is s's client that does not follow redirects: a test must see
// what the registry answered, not where it sent the client.
func blobClient(s *registrytest.Server) *http.Client {
	c := *s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// blobSend makes one request; it is safe to use from several goroutines.
func blobSend(s *registrytest.Server, method, path string, header http.Header, body []byte, chunked bool) (blobResult, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return blobResult{}, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if chunked {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = nil
		req.ContentLength = -1
	}
	res, err := blobClient(s).Do(req)
	if err != nil {
		return blobResult{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return blobResult{}, err
	}
	return blobResult{code: res.StatusCode, header: res.Header, body: b}, nil
}

// errCodes returns the codes of a spec error body.
func errCodes(t testing.TB, body []byte) []string {
	t.Helper()
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not the spec's error JSON: %v", body, err)
	}
	codes := make([]string, 0, len(e.Errors))
	for _, x := range e.Errors {
		codes = append(codes, x.Code)
	}
	return codes
}

// blobSession runs calls against one server in order, remembering the
// latest upload session so that later paths can name it.
type blobSession struct {
	t      *testing.T
	s      *registrytest.Server
	upload string // Location of the latest session
	id     string // its id
}

func (bs *blobSession) expand(path string) string {
	return strings.NewReplacer("{upload}", bs.upload, "{id}", bs.id).Replace(path)
}

// run makes the call and checks the answer; what is wrong is reported
// under what, and a wrong status ends the test, as later calls depend on it.
func (bs *blobSession) run(what string, c blobCall) blobResult {
	t := bs.t
	t.Helper()
	path := bs.expand(c.path)
	what = fmt.Sprintf("%s: %s %s", what, c.method, path)
	res, err := blobSend(bs.s, c.method, path, c.header, c.body, c.chunked)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if id := res.header.Get("Docker-Upload-UUID"); id != "" && res.header.Get("Location") != "" {
		bs.upload, bs.id = res.header.Get("Location"), id
	}
	if res.code != c.wantCode {
		t.Fatalf("%s: status %d, want %d; body %s", what, res.code, c.wantCode, res.body)
	}
	if c.method == http.MethodHead {
		if len(res.body) != 0 {
			t.Errorf("%s: HEAD answered with a %d-byte body", what, len(res.body))
		}
		if c.wantErrCode != "" {
			t.Fatalf("bad test: %s: a HEAD response has no body to carry an error code", what)
		}
	}
	if c.wantErrCode != "" {
		if codes := errCodes(t, res.body); !slices.Equal(codes, []string{c.wantErrCode}) {
			t.Errorf("%s: error codes %v, want [%s]; body %s", what, codes, c.wantErrCode, res.body)
		}
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: error Content-Type %q, want application/json", what, ct)
		}
	}
	for k, want := range c.wantHeader {
		got, present := res.header.Get(k), len(res.header.Values(k)) > 0
		switch want := want.(type) {
		case nil:
			if present {
				t.Errorf("%s: header %s is %q, want none", what, k, got)
			}
		case string:
			want = bs.expand(want)
			if !present || got != want {
				t.Errorf("%s: header %s is %q, want %q", what, k, got, want)
			}
		case *regexp.Regexp:
			if !present || !want.MatchString(got) {
				t.Errorf("%s: header %s is %q, want a match of %s", what, k, got, want)
			}
		default:
			t.Fatalf("bad test: header %s: want a string, *regexp.Regexp or nil, not %T", k, want)
		}
	}
	if c.wantBody != nil && !bytes.Equal(res.body, c.wantBody) {
		t.Errorf("%s: body of %d bytes %.80q, want %d bytes %.80q", what, len(res.body), res.body, len(c.wantBody), c.wantBody)
	}
	return res
}

// blobRun runs each case against a fresh server.
func blobRun(t *testing.T, cases []blobCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bs := &blobSession{t: t, s: registrytest.NewServer(t)}
			for i, g := range c.given {
				bs.run(fmt.Sprintf("given #%d", i+1), g)
			}
			bs.run("request", blobCall{
				method: c.method, path: c.path, header: c.header, body: c.body, chunked: c.chunked,
				wantCode: c.wantCode, wantErrCode: c.wantErrCode, wantHeader: c.wantHeader, wantBody: c.wantBody,
			})
			for i, then := range c.then {
				bs.run(fmt.Sprintf("then #%d", i+1), then)
			}
		})
	}
}

// blobPushed pushes content to repo in one request (a monolithic POST).
func blobPushed(repo string, content []byte) blobCall {
	d := digest.FromBytes(content)
	return blobCall{
		method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/?digest=" + d.String(),
		header: blobHeader("Content-Type", "application/octet-stream"), body: content,
		wantCode: http.StatusCreated,
		wantHeader: map[string]any{
			"Location":              blobPath(repo, d),
			"Docker-Content-Digest": d.String(),
		},
	}
}

// blobPushedDigest is blobPushed for content that is stored under d, of
// any algorithm.
func blobPushedDigest(repo string, d digest.Digest, content []byte) blobCall {
	c := blobPushed(repo, content)
	c.path = "/v2/" + repo + "/blobs/uploads/?digest=" + d.String()
	c.wantHeader = map[string]any{"Location": blobPath(repo, d), "Docker-Content-Digest": d.String()}
	return c
}

// blobIs checks that repo serves content as blob d, with its headers.
func blobIs(repo string, d digest.Digest, content []byte) blobCall {
	return blobCall{
		method: http.MethodGet, path: blobPath(repo, d),
		wantCode: http.StatusOK, wantBody: content,
		wantHeader: map[string]any{
			"Docker-Content-Digest": d.String(),
			"Content-Length":        fmt.Sprint(len(content)),
		},
	}
}

// blobHas checks that repo serves content under its sha256 digest.
func blobHas(repo string, content []byte) blobCall {
	return blobIs(repo, digest.FromBytes(content), content)
}

// blobLacks checks that repo does not serve blob d.
func blobLacks(repo string, d digest.Digest) blobCall {
	return blobCall{method: http.MethodGet, path: blobPath(repo, d), wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN"}
}

// blobHeadLacks checks that HEAD of blob d in repo is 404.
func blobHeadLacks(repo string, d digest.Digest) blobCall {
	return blobCall{method: http.MethodHead, path: blobPath(repo, d), wantCode: http.StatusNotFound}
}

// uploadStarted opens an upload session in repo.
func uploadStarted(repo string) blobCall {
	return blobCall{
		method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/",
		wantCode: http.StatusAccepted,
		wantHeader: map[string]any{
			"Location":           uploadLocationRe(repo),
			"Docker-Upload-UUID": regexp.MustCompile(`^` + blobUUIDRe + `$`),
			"Range":              "0-0",
		},
	}
}

// uploadRange is the Range header of a session holding n bytes.
func uploadRange(n int) string {
	if n == 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", n-1)
}

// uploadChunk sends content[from:to] to the latest session with a
// Content-Range, as a chunk that the registry must accept.
func uploadChunk(content []byte, from, to int) blobCall {
	return blobCall{
		method: http.MethodPatch, path: "{upload}",
		header:   blobHeader("Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("%d-%d", from, to-1)),
		body:     content[from:to],
		wantCode: http.StatusAccepted,
		wantHeader: map[string]any{
			"Location":           "{upload}",
			"Docker-Upload-UUID": "{id}",
			"Range":              uploadRange(to),
		},
	}
}

// uploadAt checks that the latest session holds n bytes.
func uploadAt(n int) blobCall {
	return blobCall{
		method: http.MethodGet, path: "{upload}",
		wantCode: http.StatusNoContent,
		wantHeader: map[string]any{
			"Location":           "{upload}",
			"Docker-Upload-UUID": "{id}",
			"Range":              uploadRange(n),
		},
	}
}

// uploadFinished completes the latest session of repo as blob d, with no
// body.
func uploadFinished(repo string, d digest.Digest) blobCall {
	return blobCall{
		method: http.MethodPut, path: "{upload}?digest=" + d.String(),
		wantCode: http.StatusCreated,
		wantHeader: map[string]any{
			"Location":              blobPath(repo, d),
			"Docker-Content-Digest": d.String(),
		},
	}
}

// uploadGone checks that the latest session no longer exists.
func uploadGone() blobCall {
	return blobCall{method: http.MethodGet, path: "{upload}", wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"}
}

// uploadRaw sends a request over a fresh TCP connection as written, shuts
// down the sending side, and returns the status the registry answered, or
// 0 when it closed the connection without an answer.
func uploadRaw(t *testing.T, s *registrytest.Server, request string) int {
	t.Helper()
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A safety net, not a wait: the server answers once it sees the end.
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// uploadPush pushes content to repo in a session of chunks PATCHes (a
// monolithic POST when chunks is 0), safe to call from many goroutines.
func uploadPush(s *registrytest.Server, repo string, content []byte, chunks int) error {
	d := digest.FromBytes(content)
	if chunks == 0 {
		res, err := blobSend(s, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), nil, content, false)
		if err != nil {
			return err
		}
		if res.code != http.StatusCreated {
			return fmt.Errorf("monolithic POST to %s: status %d, body %s", repo, res.code, res.body)
		}
		return nil
	}
	res, err := blobSend(s, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil, false)
	if err != nil {
		return err
	}
	if res.code != http.StatusAccepted {
		return fmt.Errorf("POST to %s: status %d, body %s", repo, res.code, res.body)
	}
	loc := res.header.Get("Location")
	size := (len(content) + chunks - 1) / chunks
	for from := 0; from < len(content); from += size {
		to := min(from+size, len(content))
		h := blobHeader("Content-Range", fmt.Sprintf("%d-%d", from, to-1))
		res, err := blobSend(s, http.MethodPatch, loc, h, content[from:to], false)
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("0-%d", to-1); res.code != http.StatusAccepted || res.header.Get("Range") != want {
			return fmt.Errorf("PATCH %s %d-%d: status %d, Range %q, want 202, %s; body %s",
				loc, from, to-1, res.code, res.header.Get("Range"), want, res.body)
		}
	}
	res, err = blobSend(s, http.MethodPut, loc+"?digest="+d.String(), nil, nil, false)
	if err != nil {
		return err
	}
	if res.code != http.StatusCreated {
		return fmt.Errorf("PUT %s: status %d, body %s", loc, res.code, res.body)
	}
	return nil
}

// uploadBrokenBody yields data, then fails with err: what a request body
// does when the client's connection breaks in the middle.
type uploadBrokenBody struct {
	data []byte
	err  error
}

func (b *uploadBrokenBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, b.err
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// uploadAPI is the distribution API over real stores in a temporary
// directory, without an HTTP server in front. Over a real connection a
// broken body also cancels the request's context, which hides what the
// handler itself does with the broken body; here nothing else intervenes.
func uploadAPI(t *testing.T) http.Handler {
	t.Helper()
	return distribution.New(uploadService(t), slog.New(slog.DiscardHandler))
}

// uploadService is a registry service on SQLite and a blob directory in a
// temporary directory.
func uploadService(t *testing.T) *registry.Service {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	meta, err := sqldb.OpenSQLite(context.Background(), filepath.Join(dir, "wharf.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"), log)
	if err != nil {
		t.Fatal(err)
	}
	return registry.New(meta, blobs, log, registry.Options{})
}

// uploadServe makes one request of h.
func uploadServe(h http.Handler, method, path string, header http.Header, body io.Reader, length int64) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	req.ContentLength = length
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
