package distribution_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

func TestBlobGet(t *testing.T) {
	path := blobPath("app", blobDigest)
	etag := `"` + blobDigest.String() + `"`
	size := fmt.Sprint(len(blobData))
	pushed := []blobCall{blobPushed("app", blobData)}
	blobRun(t, []blobCase{
		{
			name: "HEAD answers size, digest and ETag without a body", given: pushed,
			method: http.MethodHead, path: path,
			wantCode: http.StatusOK,
			wantHeader: map[string]any{
				"Content-Length":        size,
				"Docker-Content-Digest": blobDigest.String(),
				"ETag":                  etag,
			},
		},
		{
			name: "GET answers the content, size, digest and ETag", given: pushed,
			method: http.MethodGet, path: path,
			wantCode: http.StatusOK, wantBody: blobData,
			wantHeader: map[string]any{
				"Content-Length":        size,
				"Docker-Content-Digest": blobDigest.String(),
				"ETag":                  etag,
				"Content-Type":          "application/octet-stream",
				"Accept-Ranges":         "bytes",
			},
		},
		{
			name: "GET of a range answers 206 with the bytes and Content-Range", given: pushed,
			method: http.MethodGet, path: path, header: blobHeader("Range", "bytes=10-19"),
			wantCode: http.StatusPartialContent, wantBody: blobData[10:20],
			wantHeader: map[string]any{
				"Content-Range":         "bytes 10-19/64",
				"Content-Length":        "10",
				"Docker-Content-Digest": blobDigest.String(),
			},
		},
		{
			name: "GET of an open-ended range answers the rest", given: pushed,
			method: http.MethodGet, path: path, header: blobHeader("Range", "bytes=60-"),
			wantCode: http.StatusPartialContent, wantBody: blobData[60:],
			wantHeader: map[string]any{"Content-Range": "bytes 60-63/64", "Content-Length": "4"},
		},
		{
			name: "GET of a suffix range answers the last bytes", given: pushed,
			method: http.MethodGet, path: path, header: blobHeader("Range", "bytes=-5"),
			wantCode: http.StatusPartialContent, wantBody: blobData[59:],
			wantHeader: map[string]any{"Content-Range": "bytes 59-63/64"},
		},
		{
			name: "GET of a range running past the end answers up to the end", given: pushed,
			method: http.MethodGet, path: path, header: blobHeader("Range", "bytes=62-1000"),
			wantCode: http.StatusPartialContent, wantBody: blobData[62:],
			wantHeader: map[string]any{"Content-Range": "bytes 62-63/64"},
		},
		{
			name: "GET of a range beyond the end answers 416 with the size", given: pushed,
			method: http.MethodGet, path: path, header: blobHeader("Range", "bytes=64-100"),
			wantCode:   http.StatusRequestedRangeNotSatisfiable,
			wantHeader: map[string]any{"Content-Range": "bytes */64"},
		},
		{
			name: "HEAD ignores Range", given: pushed,
			method: http.MethodHead, path: path, header: blobHeader("Range", "bytes=0-9"),
			wantCode:   http.StatusOK,
			wantHeader: map[string]any{"Content-Length": size, "Content-Range": nil},
		},
		{
			name: "GET with a matching If-None-Match answers 304", given: pushed,
			method: http.MethodGet, path: path, header: blobHeader("If-None-Match", etag),
			wantCode: http.StatusNotModified, wantBody: []byte{},
			wantHeader: map[string]any{"ETag": etag},
		},
		{
			name: "HEAD with a matching If-None-Match answers 304, as GET does", given: pushed,
			method: http.MethodHead, path: path, header: blobHeader("If-None-Match", etag),
			wantCode:   http.StatusNotModified,
			wantHeader: map[string]any{"ETag": etag},
		},
		{
			name: "GET with another ETag in If-None-Match answers the content", given: pushed,
			method: http.MethodGet, path: path, header: blobHeader("If-None-Match", `"`+blobOtherDigest.String()+`"`),
			wantCode: http.StatusOK, wantBody: blobData,
		},
		{
			name:   "GET of the empty blob answers no bytes",
			given:  []blobCall{blobPushed("app", nil)},
			method: http.MethodGet, path: blobPath("app", blobEmptyDigest),
			wantCode: http.StatusOK, wantBody: []byte{},
			wantHeader: map[string]any{"Content-Length": "0", "Docker-Content-Digest": blobEmptyDigest.String()},
		},
		{
			name:   "GET of a blob of a multi-component repository",
			given:  []blobCall{blobPushed("a/b/c/d", blobData)},
			method: http.MethodGet, path: blobPath("a/b/c/d", blobDigest),
			wantCode: http.StatusOK, wantBody: blobData,
		},
		{
			name: "GET of a blob never pushed is BLOB_UNKNOWN", given: pushed,
			method: http.MethodGet, path: blobPath("app", blobNeverPushed),
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN",
		},
		{
			name: "HEAD of a blob never pushed is 404", given: pushed,
			method: http.MethodHead, path: blobPath("app", blobNeverPushed),
			wantCode: http.StatusNotFound,
		},
		{
			name: "a blob pushed to one repository is BLOB_UNKNOWN in another", given: pushed,
			method: http.MethodGet, path: blobPath("other", blobDigest),
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN",
			then: []blobCall{blobHeadLacks("other", blobDigest), blobHeadLacks("app/sub", blobDigest), blobHas("app", blobData)},
		},
		{
			name:   "GET of a blob in a repository that does not exist is BLOB_UNKNOWN",
			method: http.MethodGet, path: blobPath("nobody/here", blobDigest),
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN",
		},
		{
			name: "GET of the sha512 digest of a blob pushed by sha256 is BLOB_UNKNOWN", given: pushed,
			method: http.MethodGet, path: blobPath("app", blobDigest512),
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN",
		},
		{
			name:   "the blobs endpoint without a digest is no endpoint",
			method: http.MethodGet, path: "/v2/app/blobs/",
			wantCode: http.StatusNotFound, wantErrCode: "NAME_UNKNOWN",
		},
	})
}

func TestBlobDelete(t *testing.T) {
	pushed := []blobCall{blobPushed("app", blobData)}
	blobRun(t, []blobCase{
		{
			name: "DELETE answers 202 and the blob is gone", given: pushed,
			method: http.MethodDelete, path: blobPath("app", blobDigest),
			wantCode: http.StatusAccepted, wantHeader: map[string]any{"Content-Length": "0"},
			then: []blobCall{blobLacks("app", blobDigest), blobHeadLacks("app", blobDigest)},
		},
		{
			name:   "DELETE in one repository leaves the blob in another",
			given:  []blobCall{blobPushed("app", blobData), blobPushed("mirror", blobData)},
			method: http.MethodDelete, path: blobPath("app", blobDigest),
			wantCode: http.StatusAccepted,
			then:     []blobCall{blobLacks("app", blobDigest), blobHas("mirror", blobData)},
		},
		{
			name:   "DELETE leaves the repository's other blobs",
			given:  []blobCall{blobPushed("app", blobData), blobPushed("app", blobOther)},
			method: http.MethodDelete, path: blobPath("app", blobDigest),
			wantCode: http.StatusAccepted,
			then:     []blobCall{blobLacks("app", blobDigest), blobHas("app", blobOther)},
		},
		{
			name: "a deleted blob can be pushed again",
			given: []blobCall{blobPushed("app", blobData), {
				method: http.MethodDelete, path: blobPath("app", blobDigest), wantCode: http.StatusAccepted,
			}},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + blobDigest.String(), body: blobData,
			wantCode: http.StatusCreated,
			then:     []blobCall{blobHas("app", blobData)},
		},
		{
			name: "DELETE twice is BLOB_UNKNOWN the second time",
			given: []blobCall{blobPushed("app", blobData), {
				method: http.MethodDelete, path: blobPath("app", blobDigest), wantCode: http.StatusAccepted,
			}},
			method: http.MethodDelete, path: blobPath("app", blobDigest),
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN",
		},
		{
			name: "DELETE of a blob never pushed is BLOB_UNKNOWN", given: pushed,
			method: http.MethodDelete, path: blobPath("app", blobNeverPushed),
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN",
			then: []blobCall{blobHas("app", blobData)},
		},
		{
			name: "DELETE of another repository's blob is BLOB_UNKNOWN and leaves it", given: pushed,
			method: http.MethodDelete, path: blobPath("other", blobDigest),
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UNKNOWN",
			then: []blobCall{blobHas("app", blobData)},
		},
	})
}

// Digests that are not digests are DIGEST_INVALID wherever a digest is
// taken, and nothing is stored.
func TestBlob_MalformedDigestIsDigestInvalid(t *testing.T) {
	hex := blobDigest.Encoded()
	digests := []struct{ name, digest string }{
		{"hex that is not hex", "sha256:zz"},
		{"hex that is too short", "sha256:short"},
		{"hex that is one character short", "sha256:" + hex[:63]},
		{"hex that is one character long", "sha256:" + hex + "0"},
		{"upper-case hex", "sha256:" + strings.ToUpper(hex)},
		{"an unsupported algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e"},
		{"no algorithm", hex},
		{"an empty hex part", "sha256:"},
		{"an empty algorithm", ":" + hex},
		{"sha512 with sha256's length", "sha512:" + hex},
	}
	var cases []blobCase
	for _, d := range digests {
		cases = append(cases,
			blobCase{
				name:   "GET of a blob by " + d.name,
				method: http.MethodGet, path: "/v2/app/blobs/" + d.digest,
				wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			},
			blobCase{
				name:   "HEAD of a blob by " + d.name,
				method: http.MethodHead, path: "/v2/app/blobs/" + d.digest,
				wantCode: http.StatusBadRequest,
			},
			blobCase{
				name: "DELETE of a blob by " + d.name, given: []blobCall{blobPushed("app", blobData)},
				method: http.MethodDelete, path: "/v2/app/blobs/" + d.digest,
				wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
				then: []blobCall{blobHas("app", blobData)},
			},
			blobCase{
				name:   "monolithic push by " + d.name,
				method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + d.digest, body: blobData,
				wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
				then: []blobCall{blobLacks("app", blobDigest)},
			},
			blobCase{
				name:   "completing an upload by " + d.name,
				given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 64)},
				method: http.MethodPut, path: "{upload}?digest=" + d.digest,
				wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
				then: []blobCall{blobLacks("app", blobDigest), uploadAt(64)},
			},
			blobCase{
				name: "mounting by " + d.name, given: []blobCall{blobPushed("src", blobData)},
				method: http.MethodPost, path: "/v2/app/blobs/uploads/?from=src&mount=" + d.digest,
				wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
				then: []blobCall{blobLacks("app", blobDigest)},
			},
		)
	}
	blobRun(t, cases)
}

// blobInvalidNames are repository names the spec's grammar refuses, as
// they appear in a path.
var blobInvalidNames = []struct{ name, repo string }{
	{"upper case", "App"},
	{"upper case in a later component", "library/Ubuntu"},
	{"a leading dash", "-app"},
	{"a trailing dash", "app-"},
	{"a leading dot", ".app"},
	{"a leading underscore", "_app"},
	{"three underscores", "a___b"},
	{"a space", "a%20b"},
	{"an encoded dot-dot component", "a/%2e%2e/b"},
	{"an encoded dot-dot name", "%2e%2e"},
	{"a colon", "a:b"},
	{"non-ASCII letters", "caf%C3%A9"},
	{"256 characters", strings.Repeat("a", 256)},
	{"256 characters in components", strings.Repeat("abcdefg/", 32)[:255] + "b"},
}

// Names outside the spec's grammar are NAME_INVALID on every blob and
// upload endpoint, and nothing is stored.
func TestBlob_InvalidNameIsNameInvalid(t *testing.T) {
	const fakeID = "3f0ab2f4-7c3e-4b8e-9a51-0d1c2e3f4a5b"
	var cases []blobCase
	for _, n := range blobInvalidNames {
		repo := n.repo
		cases = append(cases,
			blobCase{
				name:   "GET of a blob in a name with " + n.name,
				method: http.MethodGet, path: blobPath(repo, blobDigest),
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
			},
			blobCase{
				name:   "HEAD of a blob in a name with " + n.name,
				method: http.MethodHead, path: blobPath(repo, blobDigest),
				wantCode: http.StatusBadRequest,
			},
			blobCase{
				name:   "DELETE of a blob in a name with " + n.name,
				method: http.MethodDelete, path: blobPath(repo, blobDigest),
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
			},
			blobCase{
				name:   "starting an upload in a name with " + n.name,
				method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/",
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
				wantHeader: map[string]any{"Location": nil, "Docker-Upload-UUID": nil},
			},
			blobCase{
				name:   "a monolithic push to a name with " + n.name,
				method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/?digest=" + blobDigest.String(), body: blobData,
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
			},
			blobCase{
				name:   "an upload's status in a name with " + n.name,
				method: http.MethodGet, path: "/v2/" + repo + "/blobs/uploads/" + fakeID,
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
			},
			blobCase{
				name:   "a chunk to a name with " + n.name,
				method: http.MethodPatch, path: "/v2/" + repo + "/blobs/uploads/" + fakeID, body: blobData,
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
			},
		)
	}
	blobRun(t, cases)
}

// Requests that try to leave the repository namespace through the path
// never create or remove a file outside the data directory, nor anything
// inside it but the store's own layout.
func TestBlob_PathTraversalStaysInsideDataDir(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "srv", "data")
	s := registrytest.NewServer(t, registrytest.WithDataDir(dataDir))
	// A file beside the data directory that a traversal could reach.
	victim := filepath.Join(root, "srv", "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A legitimate upload, so that the upload directory has a session in it.
	bs := &blobSession{t: t, s: s}
	bs.run("legitimate session", uploadStarted("app"))

	d := blobDigest.String()
	attacks := []struct{ method, path string }{
		{http.MethodPost, "/v2/../../pwned/blobs/uploads/?digest=" + d},
		{http.MethodPost, "/v2/%2e%2e/%2e%2e/pwned/blobs/uploads/?digest=" + d},
		{http.MethodPost, "/v2/%2e%2e%2f%2e%2e%2fpwned/blobs/uploads/?digest=" + d},
		{http.MethodPost, "/v2/app/blobs/uploads/?digest=sha256:..%2f..%2f..%2fpwned"},
		{http.MethodPost, "/v2/app/blobs/uploads/?digest=sha256:../../../pwned"},
		{http.MethodPost, "/v2/app/blobs/uploads/?mount=sha256:..%2f..%2fpwned&from=app"},
		{http.MethodPost, "/v2/app/blobs/uploads/?digest-algorithm=..%2f..%2fpwned"},
		{http.MethodPost, "/v2/%2e%2e/blobs/uploads/"},
		{http.MethodPatch, "/v2/app/blobs/uploads/..%2f..%2f..%2fpwned"},
		{http.MethodPatch, "/v2/app/blobs/uploads/%2e%2e"},
		{http.MethodPatch, "/v2/app/blobs/uploads/.."},
		{http.MethodPatch, "/v2/app/blobs/uploads/..%2fvictim"},
		{http.MethodPatch, "/v2/app/blobs/uploads/%2e%2e%2f%2e%2e%2f%2e%2e%2fvictim"},
		{http.MethodPut, "/v2/app/blobs/uploads/..%2f..%2fpwned?digest=" + d},
		{http.MethodPut, "/v2/app/blobs/uploads/{id}?digest=sha256:..%2f..%2f..%2f..%2fpwned"},
		{http.MethodDelete, "/v2/app/blobs/uploads/..%2f..%2f..%2fvictim"},
		{http.MethodDelete, "/v2/app/blobs/uploads/%2e%2e%2f%2e%2e%2f%2e%2e%2fvictim"},
		{http.MethodDelete, "/v2/app/blobs/sha256:..%2f..%2f..%2f..%2fvictim"},
		{http.MethodDelete, "/v2/%2e%2e/%2e%2e/%2e%2e/blobs/" + d},
		{http.MethodGet, "/v2/app/blobs/sha256:..%2f..%2f..%2f..%2fvictim"},
		{http.MethodGet, "/v2/%2e%2e/%2e%2e/blobs/" + d},
	}
	for _, a := range attacks {
		path := bs.expand(a.path)
		res, err := blobSend(s, a.method, path, nil, blobData, false)
		if err != nil {
			t.Fatalf("%s %s: %v", a.method, path, err)
		}
		if res.code < 300 {
			t.Errorf("%s %s: status %d, want a refusal", a.method, path, res.code)
		}
		if res.code == http.StatusOK && strings.Contains(string(res.body), "keep me") {
			t.Errorf("%s %s served the file beside the data directory", a.method, path)
		}
	}
	// The session is still there and can be used.
	bs.run("session after the attacks", uploadAt(0))

	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
		t.Errorf("the file beside the data directory is %q, %v; want it untouched", b, err)
	}
	// Nothing new beside the data directory.
	for _, dir := range []string{root, filepath.Join(root, "srv")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if p := filepath.Join(dir, e.Name()); p != filepath.Join(root, "srv") && p != dataDir && p != victim {
				t.Errorf("%s was created outside the data directory", p)
			}
		}
	}
	// Inside, only the store's layout: the database, the secret key, blob
	// directories and the one legitimate upload.
	allowed := regexp.MustCompile(`^(wharf\.db(-wal|-shm|-journal)?|secret\.key|blobs(/blobs(/sha256|/sha512)?|/uploads(/` + blobUUIDRe + `)?)?)$`)
	err := filepath.WalkDir(dataDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dataDir, p)
		if rel != "." && !allowed.MatchString(filepath.ToSlash(rel)) {
			t.Errorf("unexpected %s in the data directory", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Names with empty, "." or ".." components are refused as NAME_INVALID,
// like every other name outside the grammar, not redirected to a cleaned
// path: a redirect that keeps the method (307) makes a client that follows
// it act on another repository than the one it named.
func TestBlob_NonCanonicalNameIsNameInvalid(t *testing.T) {
	names := []struct{ name, repo string }{
		{"a dot-dot component", "a/../b"},
		{"a dot component", "a/./b"},
		{"an empty component", "a//b"},
		{"a leading slash", "/b"},
	}
	var cases []blobCase
	for _, n := range names {
		cases = append(cases,
			blobCase{
				name:   "GET of a blob in a name with " + n.name,
				given:  []blobCall{blobPushed("b", blobData)},
				method: http.MethodGet, path: blobPath(n.repo, blobDigest),
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
				wantHeader: map[string]any{"Location": nil},
			},
			blobCase{
				name:   "DELETE of a blob in a name with " + n.name,
				given:  []blobCall{blobPushed("b", blobData)},
				method: http.MethodDelete, path: blobPath(n.repo, blobDigest),
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
				wantHeader: map[string]any{"Location": nil},
				then:       []blobCall{blobHas("b", blobData)},
			},
			blobCase{
				name:   "a monolithic push to a name with " + n.name,
				method: http.MethodPost, path: "/v2/" + n.repo + "/blobs/uploads/?digest=" + blobDigest.String(), body: blobData,
				wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
				wantHeader: map[string]any{"Location": nil},
				then:       []blobCall{blobLacks("b", blobDigest)},
			},
		)
	}
	blobRun(t, cases)

	// What the redirect does to a client that follows it, as Go's does.
	t.Run("a DELETE that follows the answer leaves the other repository alone", func(t *testing.T) {
		s := registrytest.NewServer(t)
		bs := &blobSession{t: t, s: s}
		bs.run("given", blobPushed("b", blobData))
		req, err := http.NewRequest(http.MethodDelete, s.URL+blobPath("a/../b", blobDigest), nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("DELETE %s, redirects followed: status %d, want 400", req.URL.Path, res.StatusCode)
		}
		bs.run("then", blobHas("b", blobData))
	})
}

func TestBlob_UnsupportedMethodIsUnsupported(t *testing.T) {
	blobRun(t, []blobCase{
		{
			name:   "PUT on a blob",
			method: http.MethodPut, path: blobPath("app", blobDigest), body: blobData,
			wantCode: http.StatusMethodNotAllowed, wantErrCode: "UNSUPPORTED",
			wantHeader: map[string]any{"Allow": "DELETE, GET, HEAD"},
			then:       []blobCall{blobLacks("app", blobDigest)},
		},
		{
			name:   "POST on a blob",
			method: http.MethodPost, path: blobPath("app", blobDigest), body: blobData,
			wantCode: http.StatusMethodNotAllowed, wantErrCode: "UNSUPPORTED",
			wantHeader: map[string]any{"Allow": "DELETE, GET, HEAD"},
		},
		{
			name:   "PATCH on a blob",
			method: http.MethodPatch, path: blobPath("app", blobDigest), body: blobData,
			wantCode: http.StatusMethodNotAllowed, wantErrCode: "UNSUPPORTED",
			wantHeader: map[string]any{"Allow": "DELETE, GET, HEAD"},
		},
		{
			name:   "an invented method on a blob",
			method: "BREW", path: blobPath("app", blobDigest),
			wantCode: http.StatusMethodNotAllowed, wantErrCode: "UNSUPPORTED",
			wantHeader: map[string]any{"Allow": "DELETE, GET, HEAD"},
		},
		{
			name:   "GET on the upload start",
			method: http.MethodGet, path: "/v2/app/blobs/uploads/",
			wantCode: http.StatusMethodNotAllowed, wantErrCode: "UNSUPPORTED",
			wantHeader: map[string]any{"Allow": "POST"},
		},
		{
			name:   "PUT on the upload start",
			method: http.MethodPut, path: "/v2/app/blobs/uploads/?digest=" + blobDigest.String(), body: blobData,
			wantCode: http.StatusMethodNotAllowed, wantErrCode: "UNSUPPORTED",
			wantHeader: map[string]any{"Allow": "POST"},
			then:       []blobCall{blobLacks("app", blobDigest)},
		},
		{
			name:   "POST on an upload",
			given:  []blobCall{uploadStarted("app")},
			method: http.MethodPost, path: "{upload}", body: blobData,
			wantCode: http.StatusMethodNotAllowed, wantErrCode: "UNSUPPORTED",
			wantHeader: map[string]any{"Allow": "DELETE, GET, PATCH, PUT"},
			then:       []blobCall{uploadAt(0)},
		},
		{
			name:   "HEAD on an upload",
			given:  []blobCall{uploadStarted("app")},
			method: http.MethodHead, path: "{upload}",
			wantCode:   http.StatusMethodNotAllowed,
			wantHeader: map[string]any{"Allow": "DELETE, GET, PATCH, PUT"},
		},
	})
}

func TestBlobGet_Sha512(t *testing.T) {
	blobRun(t, []blobCase{
		{
			name:   "a blob pushed by its sha512 digest is served by it",
			given:  []blobCall{blobPushedDigest("app", blobDigest512, blobData)},
			method: http.MethodGet, path: blobPath("app", blobDigest512),
			wantCode: http.StatusOK, wantBody: blobData,
			wantHeader: map[string]any{
				"Docker-Content-Digest": blobDigest512.String(),
				"ETag":                  `"` + blobDigest512.String() + `"`,
			},
			then: []blobCall{blobLacks("app", blobDigest)},
		},
	})
}
