package distribution_test

import (
	"net/http"
	"regexp"
	"testing"
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
