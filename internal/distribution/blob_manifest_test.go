package distribution_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registrytest"
)

func TestBlobGet_ServesManifestsByDigest(t *testing.T) {
	s := registrytest.NewServer(t)
	mfPushImage(t, s, "app/web", "v1")
	d := digest.FromBytes(mfOCI)
	path := "/v2/app/web/blobs/" + d.String()

	head := mfDo(t, s, http.MethodHead, path, nil, nil)
	if head.code != http.StatusOK || head.header.Get("Content-Length") != itoa(len(mfOCI)) {
		t.Fatalf("HEAD %s: %d, Content-Length %q; want 200, %d", path, head.code, head.header.Get("Content-Length"), len(mfOCI))
	}
	get := mfDo(t, s, http.MethodGet, path, nil, nil)
	if get.code != http.StatusOK || !bytes.Equal(get.body, mfOCI) {
		t.Fatalf("GET %s: %d, body %q; want the manifest", path, get.code, get.body)
	}
	if got := get.header.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("Docker-Content-Digest = %q, want %s", got, d)
	}
	other := mfDo(t, s, http.MethodGet, "/v2/app/other/blobs/"+d.String(), nil, nil)
	if other.code != http.StatusNotFound {
		t.Errorf("GET of the manifest through another repository: %d, want 404", other.code)
	}

}

func itoa(n int) string { return strconv.Itoa(n) }
