package distribution_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
)

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
