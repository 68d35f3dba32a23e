package distribution_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registrytest"
)

func TestUploadCancel(t *testing.T) {
	blobRun(t, []blobCase{
		{
			name:   "DELETE of a session answers 204 and the session is gone",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 20)},
			method: http.MethodDelete, path: "{upload}",
			wantCode: http.StatusNoContent,
			then: []blobCall{
				uploadGone(),
				{method: http.MethodPatch, path: "{upload}", body: blobData[20:], wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
				{method: http.MethodPut, path: "{upload}?digest=" + blobDigest.String(), body: blobData[20:], wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
				{method: http.MethodDelete, path: "{upload}", wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
				blobLacks("app", blobDigest),
			},
		},
	})
}

// An upload id is known only in the repository whose session it is.
func TestUpload_UnknownIDIsBlobUploadUnknown(t *testing.T) {
	const unknown = "/v2/app/blobs/uploads/3f0ab2f4-7c3e-4b8e-9a51-0d1c2e3f4a5b"
	d := blobDigest.String()
	// inApp is a session of app holding 20 bytes, whose id the cases below
	// use under another repository.
	inApp := []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 20)}
	intact := []blobCall{uploadAt(20), blobLacks("other", blobDigest), uploadChunk(blobData, 20, 64), uploadFinished("app", blobDigest), blobHas("app", blobData)}
	blobRun(t, []blobCase{
		{name: "GET of an unknown id", method: http.MethodGet, path: unknown, wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PATCH of an unknown id", method: http.MethodPatch, path: unknown, body: blobData, wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PUT of an unknown id", method: http.MethodPut, path: unknown + "?digest=" + d, body: blobData, wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN",
			then: []blobCall{blobLacks("app", blobDigest)}},
		{name: "DELETE of an unknown id", method: http.MethodDelete, path: unknown, wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "GET of an id that is not a UUID", method: http.MethodGet, path: "/v2/app/blobs/uploads/not-an-id", wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PATCH of an id of 4096 characters", method: http.MethodPatch, path: "/v2/app/blobs/uploads/" + strings.Repeat("a", 4096), body: blobData, wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN"},
		{
			name: "GET of another repository's id", given: inApp,
			method: http.MethodGet, path: "/v2/other/blobs/uploads/{id}",
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN", then: intact,
		},
		{
			name: "PATCH of another repository's id", given: inApp,
			method: http.MethodPatch, path: "/v2/other/blobs/uploads/{id}", body: blobData[20:],
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN", then: intact,
		},
		{
			name: "PUT of another repository's id", given: inApp,
			method: http.MethodPut, path: "/v2/other/blobs/uploads/{id}?digest=" + d, body: blobData[20:],
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN", then: intact,
		},
		{
			name: "DELETE of another repository's id", given: inApp,
			method: http.MethodDelete, path: "/v2/other/blobs/uploads/{id}",
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN", then: intact,
		},
		{
			name: "GET of an id under a repository whose name it prefixes", given: inApp,
			method: http.MethodGet, path: "/v2/app/sub/blobs/uploads/{id}",
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN", then: intact,
		},
	})
}

// A session lives in the data directory, not in the process: a registry
// restarted on the same directory continues it.
func TestUpload_SessionSurvivesRestart(t *testing.T) {
	cases := []struct {
		name  string
		start string
		d     digest.Digest
	}{
		{"sha256", "/v2/app/blobs/uploads/", blobDigest},
		{"sha512 announced at POST", "/v2/app/blobs/uploads/?digest-algorithm=sha512", blobDigest512},
		{"sha512 given only at PUT", "/v2/app/blobs/uploads/", blobDigest512},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			first := registrytest.NewServer(t, registrytest.WithDataDir(dir))
			bs := &blobSession{t: t, s: first}
			bs.run("before restart", blobCall{method: http.MethodPost, path: c.start, wantCode: http.StatusAccepted})
			bs.run("before restart", uploadChunk(blobData, 0, 20))
			bs.run("before restart", uploadChunk(blobData, 20, 40))
			first.Close()

			bs.s = registrytest.NewServer(t, registrytest.WithDataDir(dir))
			bs.run("after restart", uploadAt(40))
			bs.run("after restart", uploadChunk(blobData, 40, 64))
			bs.run("after restart", uploadFinished("app", c.d))
			bs.run("after restart", blobIs("app", c.d, blobData))
		})
	}
}

// Eight clients pushing the same blob at once, to one repository or to
// eight, all succeed, and every repository serves the blob intact.
func TestUpload_ConcurrentPushesOfOneBlobAllSucceed(t *testing.T) {
	content := bytes.Repeat([]byte("wharf concurrency "), 1<<16) // about 1.1 MiB
	cases := []struct {
		name   string
		repo   func(i int) string
		chunks int
	}{
		{"monolithic to one repository", func(int) string { return "app" }, 0},
		{"monolithic to eight repositories", func(i int) string { return fmt.Sprintf("app/n%d", i) }, 0},
		{"chunked to one repository", func(int) string { return "app" }, 3},
		{"chunked to eight repositories", func(i int) string { return fmt.Sprintf("app/n%d", i) }, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := registrytest.NewServer(t)
			const clients = 8
			errs := make([]error, clients)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Go(func() { errs[i] = uploadPush(s, c.repo(i), content, c.chunks) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("client %d: %v", i, err)
				}
			}
			bs := &blobSession{t: t, s: s}
			for i := range clients {
				bs.run(fmt.Sprintf("client %d's blob", i), blobHas(c.repo(i), content))
			}
		})
	}
}
