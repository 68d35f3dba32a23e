package distribution_test

import (
	"net/http"
	"testing"
)

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
