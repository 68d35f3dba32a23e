package distribution_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registrytest"
)

func TestUploadStart(t *testing.T) {
	d := blobDigest.String()
	blobRun(t, []blobCase{
		{
			name:   "POST opens a session: 202 with Location, Docker-Upload-UUID and Range 0-0",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/",
			wantCode: http.StatusAccepted,
			wantHeader: map[string]any{
				"Location":           uploadLocationRe("app"),
				"Docker-Upload-UUID": regexp.MustCompile(`^` + blobUUIDRe + `$`),
				"Range":              "0-0",
				"Content-Length":     "0",
			},
			then: []blobCall{uploadAt(0)},
		},
		{
			name:   "POST without the trailing slash opens a session",
			method: http.MethodPost, path: "/v2/app/blobs/uploads",
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Location": uploadLocationRe("app"), "Range": "0-0"},
			then:       []blobCall{uploadAt(0)},
		},
		{
			name:   "POST opens a session in a multi-component repository",
			method: http.MethodPost, path: "/v2/a/b/c/d/blobs/uploads/",
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Location": uploadLocationRe("a/b/c/d")},
			then:       []blobCall{uploadChunk(blobData, 0, 64), uploadFinished("a/b/c/d", blobDigest), blobHas("a/b/c/d", blobData)},
		},
		{
			name:   "POST in a repository whose components are API words",
			method: http.MethodPost, path: "/v2/blobs/uploads/blobs/uploads/",
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Location": uploadLocationRe("blobs/uploads")},
			then:       []blobCall{uploadChunk(blobData, 0, 64), uploadFinished("blobs/uploads", blobDigest), blobHas("blobs/uploads", blobData)},
		},
		{
			name:   "monolithic POST ?digest= stores the blob: 201 with Location and Docker-Content-Digest",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + d, body: blobData,
			header:   blobHeader("Content-Type", "application/octet-stream"),
			wantCode: http.StatusCreated,
			wantHeader: map[string]any{
				"Location":              blobPath("app", blobDigest),
				"Docker-Content-Digest": d,
				"Docker-Upload-UUID":    nil,
			},
			then: []blobCall{blobHas("app", blobData)},
		},
		{
			name:   "monolithic POST with a streamed body stores the blob",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + d, body: blobData, chunked: true,
			wantCode: http.StatusCreated,
			then:     []blobCall{blobHas("app", blobData)},
		},
		{
			name:   "monolithic POST of the empty blob stores it",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + blobEmptyDigest.String(),
			wantCode:   http.StatusCreated,
			wantHeader: map[string]any{"Docker-Content-Digest": blobEmptyDigest.String()},
			then:       []blobCall{blobIs("app", blobEmptyDigest, []byte{})},
		},
		{
			name:   "monolithic POST by a sha512 digest stores the blob under it",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + blobDigest512.String(), body: blobData,
			wantCode:   http.StatusCreated,
			wantHeader: map[string]any{"Location": blobPath("app", blobDigest512), "Docker-Content-Digest": blobDigest512.String()},
			then:       []blobCall{blobIs("app", blobDigest512, blobData), blobLacks("app", blobDigest)},
		},
		{
			name:   "monolithic POST whose body has another digest is DIGEST_INVALID and stores nothing",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + blobOtherDigest.String(), body: blobData,
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: []blobCall{blobLacks("app", blobOtherDigest), blobLacks("app", blobDigest), blobHeadLacks("app", blobOtherDigest)},
		},
		{
			name:   "monolithic POST whose body is one byte short is refused and stores nothing",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest=" + d, body: blobData[:63],
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: []blobCall{blobLacks("app", blobDigest)},
		},
		{
			name:   "POST ?digest-algorithm=sha512 opens a session that completes by a sha512 digest",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest-algorithm=sha512",
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Location": uploadLocationRe("app"), "Range": "0-0"},
			then: []blobCall{
				uploadChunk(blobData, 0, 30), uploadChunk(blobData, 30, 64),
				uploadFinished("app", blobDigest512),
				blobIs("app", blobDigest512, blobData), blobLacks("app", blobDigest),
			},
		},
		{
			name:   "POST ?digest-algorithm=sha256 opens a session",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest-algorithm=sha256",
			wantCode: http.StatusAccepted,
			then:     []blobCall{uploadChunk(blobData, 0, 64), uploadFinished("app", blobDigest), blobHas("app", blobData)},
		},
		{
			name:   "POST ?digest-algorithm=md5 is DIGEST_INVALID and opens no session",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest-algorithm=md5",
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			wantHeader: map[string]any{"Location": nil, "Docker-Upload-UUID": nil},
		},
		{
			name:   "POST ?digest-algorithm=sha384 is DIGEST_INVALID and opens no session",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest-algorithm=sha384",
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			wantHeader: map[string]any{"Location": nil, "Docker-Upload-UUID": nil},
		},
		{
			name:   "POST ?digest-algorithm=blake3 is DIGEST_INVALID and opens no session",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest-algorithm=blake3",
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			wantHeader: map[string]any{"Location": nil, "Docker-Upload-UUID": nil},
		},
	})
}

func TestUploadMount(t *testing.T) {
	d := blobDigest.String()
	mounted := map[string]any{"Location": blobPath("app", blobDigest), "Docker-Content-Digest": d, "Docker-Upload-UUID": nil}
	session := map[string]any{"Location": uploadLocationRe("app"), "Range": "0-0"}
	blobRun(t, []blobCase{
		{
			name:   "mount from a repository that holds the blob links it: 201",
			given:  []blobCall{blobPushed("src", blobData)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d + "&from=src",
			wantCode: http.StatusCreated, wantHeader: mounted,
			then: []blobCall{blobHas("app", blobData), blobHas("src", blobData)},
		},
		{
			name:   "mount from a multi-component repository links the blob",
			given:  []blobCall{blobPushed("team/base/image", blobData)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d + "&from=team/base/image",
			wantCode: http.StatusCreated, wantHeader: mounted,
			then: []blobCall{blobHas("app", blobData)},
		},
		{
			name:   "mount of a sha512 blob links it",
			given:  []blobCall{blobPushedDigest("src", blobDigest512, blobData)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + blobDigest512.String() + "&from=src",
			wantCode: http.StatusCreated,
			wantHeader: map[string]any{
				"Location":              blobPath("app", blobDigest512),
				"Docker-Content-Digest": blobDigest512.String(),
			},
			then: []blobCall{blobIs("app", blobDigest512, blobData)},
		},
		{
			name:   "mount of the empty blob links it",
			given:  []blobCall{blobPushed("src", nil)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + blobEmptyDigest.String() + "&from=src",
			wantCode: http.StatusCreated,
			then:     []blobCall{blobIs("app", blobEmptyDigest, []byte{})},
		},
		{
			name:   "mount from a repository that lacks the blob opens a session: 202",
			given:  []blobCall{blobPushed("holder", blobData), blobPushed("src", blobOther)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d + "&from=src",
			wantCode: http.StatusAccepted, wantHeader: session,
			then: []blobCall{
				blobLacks("app", blobDigest), uploadAt(0),
				uploadChunk(blobData, 0, 64), uploadFinished("app", blobDigest), blobHas("app", blobData),
			},
		},
		{
			name:   "mount from a repository that does not exist opens a session",
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d + "&from=nowhere",
			wantCode: http.StatusAccepted, wantHeader: session,
			then: []blobCall{blobLacks("app", blobDigest), uploadAt(0)},
		},
		{
			name:   "mount from an invalid repository name opens a session",
			given:  []blobCall{blobPushed("src", blobData)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d + "&from=Src",
			wantCode: http.StatusAccepted, wantHeader: session,
			then: []blobCall{blobLacks("app", blobDigest)},
		},
		{
			name: "mount from a repository whose blob was deleted opens a session",
			given: []blobCall{blobPushed("src", blobData), {
				method: http.MethodDelete, path: blobPath("src", blobDigest), wantCode: http.StatusAccepted,
			}},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d + "&from=src",
			wantCode: http.StatusAccepted, wantHeader: session,
			then: []blobCall{blobLacks("app", blobDigest)},
		},
		{
			name:   "mount without from links the blob when any repository holds it",
			given:  []blobCall{blobPushed("somewhere/else", blobData)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d,
			wantCode: http.StatusCreated, wantHeader: mounted,
			then: []blobCall{blobHas("app", blobData)},
		},
		{
			name:   "mount without from opens a session when no repository holds the blob",
			given:  []blobCall{blobPushed("src", blobOther)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d,
			wantCode: http.StatusAccepted, wantHeader: session,
			then: []blobCall{blobLacks("app", blobDigest), uploadAt(0)},
		},
		{
			name:   "mount of a blob the repository already holds: 201",
			given:  []blobCall{blobPushed("app", blobData), blobPushed("src", blobData)},
			method: http.MethodPost, path: "/v2/app/blobs/uploads/?mount=" + d + "&from=src",
			wantCode: http.StatusCreated, wantHeader: mounted,
			then: []blobCall{blobHas("app", blobData)},
		},
		{
			name:   "mount into an invalid name is NAME_INVALID",
			given:  []blobCall{blobPushed("src", blobData)},
			method: http.MethodPost, path: "/v2/App/blobs/uploads/?mount=" + d + "&from=src",
			wantCode: http.StatusBadRequest, wantErrCode: "NAME_INVALID",
		},
	})
}

func TestUploadChunks(t *testing.T) {
	d := blobDigest.String()
	started := []blobCall{uploadStarted("app")}
	// in20 is a session holding the first 20 bytes of blobData.
	in20 := []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 20)}
	// finishes checks that the session accepts the rest of blobData from 20
	// and completes.
	finishes := []blobCall{
		uploadAt(20), uploadChunk(blobData, 20, 64), uploadFinished("app", blobDigest),
		blobHas("app", blobData), uploadGone(),
	}
	cr := func(from, to int) http.Header { return blobHeader("Content-Range", fmt.Sprintf("%d-%d", from, to)) }
	blobRun(t, []blobCase{
		{
			name:   "PUT with the whole blob completes a session: 201",
			given:  started,
			method: http.MethodPut, path: "{upload}?digest=" + d, body: blobData,
			wantCode: http.StatusCreated,
			wantHeader: map[string]any{
				"Location":              blobPath("app", blobDigest),
				"Docker-Content-Digest": d,
				"Docker-Upload-UUID":    nil,
			},
			then: []blobCall{blobHas("app", blobData), uploadGone()},
		},
		{
			name:   "three chunks with Content-Range then PUT without a body",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 20), uploadChunk(blobData, 20, 40), uploadChunk(blobData, 40, 64)},
			method: http.MethodPut, path: "{upload}?digest=" + d,
			wantCode: http.StatusCreated,
			wantHeader: map[string]any{
				"Location":              blobPath("app", blobDigest),
				"Docker-Content-Digest": d,
			},
			then: []blobCall{blobHas("app", blobData), uploadGone()},
		},
		{
			name: "chunks of one byte",
			given: func() []blobCall {
				calls := []blobCall{uploadStarted("app")}
				for i := range 8 {
					calls = append(calls, uploadChunk(blobData[:8], i, i+1))
				}
				return calls
			}(),
			method: http.MethodPut, path: "{upload}?digest=" + digest.FromBytes(blobData[:8]).String(),
			wantCode: http.StatusCreated,
			then:     []blobCall{blobHas("app", blobData[:8])},
		},
		{
			name:   "GET of a session answers 204 with the Range it holds",
			given:  in20,
			method: http.MethodGet, path: "{upload}",
			wantCode: http.StatusNoContent,
			wantHeader: map[string]any{
				"Range":              "0-19",
				"Location":           "{upload}",
				"Docker-Upload-UUID": "{id}",
			},
		},
		{
			name:   "PATCH with only a Content-Length appends at the end",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", body: blobData[20:],
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Range": "0-63", "Location": "{upload}", "Docker-Upload-UUID": "{id}"},
			then:       []blobCall{uploadAt(64), uploadFinished("app", blobDigest), blobHas("app", blobData)},
		},
		{
			name:   "streamed PATCH without Content-Range or Content-Length appends at the end",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", body: blobData[20:], chunked: true,
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Range": "0-63"},
			then:       []blobCall{uploadAt(64), uploadFinished("app", blobDigest), blobHas("app", blobData)},
		},
		{
			name: "streamed PATCHes one after another",
			given: []blobCall{uploadStarted("app"), {
				method: http.MethodPatch, path: "{upload}", body: blobData[:33], chunked: true,
				wantCode: http.StatusAccepted, wantHeader: map[string]any{"Range": "0-32"},
			}},
			method: http.MethodPatch, path: "{upload}", body: blobData[33:], chunked: true,
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Range": "0-63"},
			then:       []blobCall{uploadFinished("app", blobDigest), blobHas("app", blobData)},
		},
		{
			name:   "a chunk that skips ahead is 416 with the Range the registry holds, and the session goes on",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", header: cr(40, 63), body: blobData[40:],
			wantCode: http.StatusRequestedRangeNotSatisfiable, wantErrCode: "BLOB_UPLOAD_INVALID",
			wantHeader: map[string]any{"Range": "0-19", "Location": "{upload}", "Docker-Upload-UUID": "{id}"},
			then:       finishes,
		},
		{
			name:   "a chunk sent again is 416 with the Range the registry holds, and the session goes on",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", header: cr(0, 19), body: blobData[:20],
			wantCode: http.StatusRequestedRangeNotSatisfiable, wantErrCode: "BLOB_UPLOAD_INVALID",
			wantHeader: map[string]any{"Range": "0-19", "Location": "{upload}"},
			then:       finishes,
		},
		{
			name:   "a chunk that overlaps the end is 416, and the session goes on",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", header: cr(10, 63), body: blobData[10:],
			wantCode: http.StatusRequestedRangeNotSatisfiable, wantErrCode: "BLOB_UPLOAD_INVALID",
			wantHeader: map[string]any{"Range": "0-19"},
			then:       finishes,
		},
		{
			name:   "a first chunk that does not start at 0 is 416",
			given:  started,
			method: http.MethodPatch, path: "{upload}", header: cr(20, 63), body: blobData[20:],
			wantCode: http.StatusRequestedRangeNotSatisfiable, wantErrCode: "BLOB_UPLOAD_INVALID",
			wantHeader: map[string]any{"Range": "0-0"},
			then:       []blobCall{uploadAt(0), uploadChunk(blobData, 0, 64), uploadFinished("app", blobDigest)},
		},
		{
			name:   "a Content-Range that is not start-end is 416 and changes nothing",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", header: blobHeader("Content-Range", "twenty-sixty"), body: blobData[20:],
			wantCode: http.StatusRequestedRangeNotSatisfiable, wantErrCode: "BLOB_UPLOAD_INVALID",
			then: finishes,
		},
		{
			name:   "a Content-Range that ends before it starts is 416 and changes nothing",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", header: blobHeader("Content-Range", "63-20"), body: blobData[20:],
			wantCode: http.StatusRequestedRangeNotSatisfiable, wantErrCode: "BLOB_UPLOAD_INVALID",
			then: finishes,
		},
		{
			name:   "a Content-Range that disagrees with Content-Length is SIZE_INVALID and changes nothing",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", header: cr(20, 29), body: blobData[20:],
			wantCode: http.StatusBadRequest, wantErrCode: "SIZE_INVALID",
			then: finishes,
		},
		{
			name:   "a Content-Range with the bytes unit is accepted",
			given:  in20,
			method: http.MethodPatch, path: "{upload}", header: blobHeader("Content-Range", "bytes 20-63/64"), body: blobData[20:],
			wantCode:   http.StatusAccepted,
			wantHeader: map[string]any{"Range": "0-63"},
			then:       []blobCall{uploadFinished("app", blobDigest), blobHas("app", blobData)},
		},
		{
			name:   "PUT with the last chunk and its Content-Range completes the session",
			given:  in20,
			method: http.MethodPut, path: "{upload}?digest=" + d, header: cr(20, 63), body: blobData[20:],
			wantCode:   http.StatusCreated,
			wantHeader: map[string]any{"Location": blobPath("app", blobDigest), "Docker-Content-Digest": d},
			then:       []blobCall{blobHas("app", blobData), uploadGone()},
		},
		{
			name:   "PUT with the last chunk without Content-Range completes the session",
			given:  in20,
			method: http.MethodPut, path: "{upload}?digest=" + d, body: blobData[20:],
			wantCode: http.StatusCreated,
			then:     []blobCall{blobHas("app", blobData), uploadGone()},
		},
		{
			name:   "PUT with a streamed last chunk completes the session",
			given:  in20,
			method: http.MethodPut, path: "{upload}?digest=" + d, body: blobData[20:], chunked: true,
			wantCode: http.StatusCreated,
			then:     []blobCall{blobHas("app", blobData), uploadGone()},
		},
		{
			name:   "PUT with a last chunk at the wrong offset is 416 and stores nothing",
			given:  in20,
			method: http.MethodPut, path: "{upload}?digest=" + d, header: cr(30, 63), body: blobData[30:],
			wantCode: http.StatusRequestedRangeNotSatisfiable, wantErrCode: "BLOB_UPLOAD_INVALID",
			wantHeader: map[string]any{"Range": "0-19"},
			then:       append([]blobCall{blobLacks("app", blobDigest)}, finishes...),
		},
		{
			name:   "PUT by a digest the bytes do not have is DIGEST_INVALID and stores nothing",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 64)},
			method: http.MethodPut, path: "{upload}?digest=" + blobOtherDigest.String(),
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			wantHeader: map[string]any{"Location": nil, "Docker-Content-Digest": nil},
			then: []blobCall{
				blobHeadLacks("app", blobOtherDigest), blobLacks("app", blobOtherDigest),
				blobHeadLacks("app", blobDigest), blobLacks("app", blobDigest),
				// The bytes are kept: the client may still complete with the right digest.
				uploadAt(64), uploadFinished("app", blobDigest), blobHas("app", blobData),
			},
		},
		{
			name:   "PUT with a body by a digest the bytes do not have is DIGEST_INVALID and stores nothing",
			given:  in20,
			method: http.MethodPut, path: "{upload}?digest=" + blobOtherDigest.String(), body: blobData[20:],
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: []blobCall{blobHeadLacks("app", blobOtherDigest), blobHeadLacks("app", blobDigest)},
		},
		{
			name:   "PUT of a session holding too few bytes is DIGEST_INVALID and stores nothing",
			given:  in20,
			method: http.MethodPut, path: "{upload}?digest=" + d,
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: append([]blobCall{blobLacks("app", blobDigest)}, finishes...),
		},
		{
			name:   "PUT without a digest is DIGEST_INVALID and stores nothing",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 64)},
			method: http.MethodPut, path: "{upload}",
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: []blobCall{blobLacks("app", blobDigest), uploadAt(64)},
		},
		{
			name:   "PUT with an empty digest is DIGEST_INVALID and stores nothing",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 64)},
			method: http.MethodPut, path: "{upload}?digest=",
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: []blobCall{blobLacks("app", blobDigest), uploadAt(64)},
		},
		{
			name:   "PUT without a digest but with a body is DIGEST_INVALID and changes nothing",
			given:  in20,
			method: http.MethodPut, path: "{upload}", body: blobData[20:],
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: finishes,
		},
		{
			name:   "PUT of an empty session by the empty digest stores the empty blob",
			given:  started,
			method: http.MethodPut, path: "{upload}?digest=" + blobEmptyDigest.String(),
			wantCode:   http.StatusCreated,
			wantHeader: map[string]any{"Docker-Content-Digest": blobEmptyDigest.String()},
			then:       []blobCall{blobIs("app", blobEmptyDigest, []byte{}), uploadGone()},
		},
		{
			name:   "PUT of a blob the registry already stores completes the session",
			given:  []blobCall{blobPushed("other", blobData), uploadStarted("app"), uploadChunk(blobData, 0, 64)},
			method: http.MethodPut, path: "{upload}?digest=" + d,
			wantCode: http.StatusCreated,
			then:     []blobCall{blobHas("app", blobData), blobHas("other", blobData), uploadGone()},
		},
		{
			name:   "PUT of a completed session is BLOB_UPLOAD_UNKNOWN",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 64), uploadFinished("app", blobDigest)},
			method: http.MethodPut, path: "{upload}?digest=" + d,
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN",
			then: []blobCall{blobHas("app", blobData)},
		},
		{
			name:   "PATCH of a completed session is BLOB_UPLOAD_UNKNOWN",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 64), uploadFinished("app", blobDigest)},
			method: http.MethodPatch, path: "{upload}", body: blobOther,
			wantCode: http.StatusNotFound, wantErrCode: "BLOB_UPLOAD_UNKNOWN",
			then: []blobCall{blobHas("app", blobData)},
		},
	})
}

func TestUpload_Sha512(t *testing.T) {
	blobRun(t, []blobCase{
		{
			name:   "a sha512 session completes by its sha512 digest",
			given:  []blobCall{{method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest-algorithm=sha512", wantCode: http.StatusAccepted}, uploadChunk(blobData, 0, 20), uploadChunk(blobData, 20, 64)},
			method: http.MethodPut, path: "{upload}?digest=" + blobDigest512.String(),
			wantCode:   http.StatusCreated,
			wantHeader: map[string]any{"Location": blobPath("app", blobDigest512), "Docker-Content-Digest": blobDigest512.String()},
			then:       []blobCall{blobIs("app", blobDigest512, blobData), blobLacks("app", blobDigest), uploadGone()},
		},
		{
			name:   "a session opened without an algorithm completes by a sha512 digest: the registry hashes again",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 20), uploadChunk(blobData, 20, 64)},
			method: http.MethodPut, path: "{upload}?digest=" + blobDigest512.String(),
			wantCode:   http.StatusCreated,
			wantHeader: map[string]any{"Location": blobPath("app", blobDigest512), "Docker-Content-Digest": blobDigest512.String()},
			then:       []blobCall{blobIs("app", blobDigest512, blobData), blobLacks("app", blobDigest), uploadGone()},
		},
		{
			name:   "a session opened without an algorithm completes by a sha512 digest with a last chunk",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 20)},
			method: http.MethodPut, path: "{upload}?digest=" + blobDigest512.String(), body: blobData[20:],
			wantCode: http.StatusCreated,
			then:     []blobCall{blobIs("app", blobDigest512, blobData)},
		},
		{
			name:   "a sha512 session completes by a sha256 digest: the registry hashes again",
			given:  []blobCall{{method: http.MethodPost, path: "/v2/app/blobs/uploads/?digest-algorithm=sha512", wantCode: http.StatusAccepted}, uploadChunk(blobData, 0, 64)},
			method: http.MethodPut, path: "{upload}?digest=" + blobDigest.String(),
			wantCode: http.StatusCreated,
			then:     []blobCall{blobHas("app", blobData), blobLacks("app", blobDigest512)},
		},
		{
			name:   "a session completed by a sha512 digest the bytes do not have is DIGEST_INVALID",
			given:  []blobCall{uploadStarted("app"), uploadChunk(blobData, 0, 64)},
			method: http.MethodPut, path: "{upload}?digest=" + digest.SHA512.FromBytes(blobOther).String(),
			wantCode: http.StatusBadRequest, wantErrCode: "DIGEST_INVALID",
			then: []blobCall{
				blobLacks("app", digest.SHA512.FromBytes(blobOther)), blobLacks("app", blobDigest512),
				uploadAt(64), uploadFinished("app", blobDigest512),
			},
		},
		{
			name:   "the empty blob by its sha512 digest",
			given:  []blobCall{uploadStarted("app")},
			method: http.MethodPut, path: "{upload}?digest=" + digest.SHA512.FromBytes(nil).String(),
			wantCode: http.StatusCreated,
			then:     []blobCall{blobIs("app", digest.SHA512.FromBytes(nil), []byte{})},
		},
	})
}

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

// A request whose body ends before what its headers declare (the client
// died, or the connection broke) stores nothing and leaves the session at
// its last good offset, from where the client can resume.
func TestUpload_TruncatedBodyStoresNothing(t *testing.T) {
	d := blobDigest.String()
	// rest is the remaining 44 bytes of blobData after a 20-byte chunk; the
	// requests below declare all of it and send 10.
	rest, sent := blobData[20:], blobData[20:30]
	chunkedStart := fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s", len(rest), sent)
	lengthStart := fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(rest), sent)
	cases := []struct {
		name   string
		method string
		path   string
		// tail is what follows the request's path and Host: the rest of the
		// headers, the blank line and the truncated body.
		tail string
	}{
		{"PATCH with Content-Range and Content-Length", http.MethodPatch, "{upload}",
			"Content-Range: 20-63\r\n" + lengthStart},
		{"PATCH with only Content-Length", http.MethodPatch, "{upload}", lengthStart},
		{"PATCH with a chunked body cut inside a chunk", http.MethodPatch, "{upload}", chunkedStart},
		{"PATCH with a chunked body cut between chunks", http.MethodPatch, "{upload}",
			fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(sent), sent)},
		{"PUT with Content-Length", http.MethodPut, "{upload}?digest=" + d, lengthStart},
		{"PUT with Content-Range and Content-Length", http.MethodPut, "{upload}?digest=" + d,
			"Content-Range: 20-63\r\n" + lengthStart},
		{"PUT with a chunked body", http.MethodPut, "{upload}?digest=" + d, chunkedStart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := registrytest.NewServer(t)
			bs := &blobSession{t: t, s: s}
			bs.run("given", uploadStarted("app"))
			bs.run("given", uploadChunk(blobData, 0, 20))

			path := bs.expand(c.path)
			code := uploadRaw(t, s, fmt.Sprintf("%s %s HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\n%s", c.method, path, c.tail))
			if code >= 200 && code < 300 {
				t.Errorf("%s %s with a truncated body: status %d, want an error", c.method, path, code)
			}

			bs.run("then", blobHeadLacks("app", blobDigest))
			bs.run("then", uploadAt(20))
			bs.run("then", uploadChunk(blobData, 20, 64))
			bs.run("then", uploadFinished("app", blobDigest))
			bs.run("then", blobHas("app", blobData))
		})
	}
	t.Run("monolithic POST", func(t *testing.T) {
		t.Parallel()
		s := registrytest.NewServer(t)
		for _, tail := range []string{
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(blobData), blobData[:30]),
			fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s", len(blobData), blobData[:30]),
		} {
			path := "/v2/app/blobs/uploads/?digest=" + d
			code := uploadRaw(t, s, "POST "+path+" HTTP/1.1\r\nHost: registry\r\n"+tail)
			if code >= 200 && code < 300 {
				t.Errorf("POST %s with a truncated body: status %d, want an error", path, code)
			}
		}
		bs := &blobSession{t: t, s: s}
		bs.run("then", blobHeadLacks("app", blobDigest))
		bs.run("then", blobLacks("app", blobDigest))
		bs.run("then", blobPushed("app", blobData))
		bs.run("then", blobHas("app", blobData))
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

// A chunk whose body breaks before its end is refused and leaves the
// session where it was, whatever the body declared: the client cannot
// know how much of it arrived.
func TestUpload_BrokenBodyLeavesSessionUnchanged(t *testing.T) {
	rest := blobData[20:]
	cases := []struct {
		name   string
		method string
		query  string
		header http.Header
		length int64
		err    error
	}{
		{"PATCH with Content-Range, cut off", http.MethodPatch, "", blobHeader("Content-Range", "20-63"), int64(len(rest)), io.ErrUnexpectedEOF},
		{"PATCH with Content-Length, cut off", http.MethodPatch, "", nil, int64(len(rest)), io.ErrUnexpectedEOF},
		{"streamed PATCH, cut off", http.MethodPatch, "", nil, -1, io.ErrUnexpectedEOF},
		{"streamed PATCH, reset", http.MethodPatch, "", nil, -1, errors.New("connection reset by peer")},
		{"PATCH with Content-Length, reset", http.MethodPatch, "", nil, int64(len(rest)), errors.New("connection reset by peer")},
		{"PUT with Content-Length, cut off", http.MethodPut, "?digest=" + blobDigest.String(), nil, int64(len(rest)), io.ErrUnexpectedEOF},
		{"streamed PUT, cut off", http.MethodPut, "?digest=" + blobDigest.String(), nil, -1, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := uploadAPI(t)
			rec := uploadServe(h, http.MethodPost, "/v2/app/blobs/uploads/", nil, nil, 0)
			loc := rec.Header().Get("Location")
			if rec.Code != http.StatusAccepted || loc == "" {
				t.Fatalf("POST: status %d, Location %q", rec.Code, loc)
			}
			rec = uploadServe(h, http.MethodPatch, loc, blobHeader("Content-Range", "0-19"), bytes.NewReader(blobData[:20]), 20)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("PATCH 0-19: status %d, body %s", rec.Code, rec.Body)
			}

			broken := &uploadBrokenBody{data: rest[:10], err: c.err}
			rec = uploadServe(h, c.method, loc+c.query, c.header, broken, c.length)
			if rec.Code < 400 {
				t.Errorf("%s with a body broken after 10 bytes: status %d, Range %q; want an error",
					c.method, rec.Code, rec.Header().Get("Range"))
			}

			rec = uploadServe(h, http.MethodGet, loc, nil, nil, 0)
			if got := rec.Header().Get("Range"); rec.Code != http.StatusNoContent || got != "0-19" {
				t.Errorf("GET %s afterwards: status %d, Range %q; want 204, 0-19", loc, rec.Code, got)
			}
			rec = uploadServe(h, http.MethodHead, blobPath("app", blobDigest), nil, nil, 0)
			if rec.Code != http.StatusNotFound {
				t.Errorf("HEAD of the blob afterwards: status %d, want 404", rec.Code)
			}
			// The client resumes from what the registry holds.
			rec = uploadServe(h, http.MethodGet, loc, nil, nil, 0)
			var from int
			if _, err := fmt.Sscanf(rec.Header().Get("Range"), "0-%d", &from); err != nil {
				t.Fatalf("Range %q: %v", rec.Header().Get("Range"), err)
			}
			from++
			rec = uploadServe(h, http.MethodPut, loc+"?digest="+blobDigest.String(),
				blobHeader("Content-Range", fmt.Sprintf("%d-63", from)), bytes.NewReader(blobData[from:]), int64(64-from))
			if rec.Code != http.StatusCreated {
				t.Errorf("resuming at %d: status %d, body %s; want 201", from, rec.Code, rec.Body)
			}
		})
	}
}
