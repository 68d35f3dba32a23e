package web_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/registrytest"
)

// putBlob uploads content to repo in one request, as the spec's
// monolithic upload.
func putBlob(t *testing.T, srv *registrytest.Server, repo string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	resp, err := http.Post(srv.URL+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(content))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload blob to %s: %d", repo, resp.StatusCode)
	}
	return d
}

func TestImagePage_ListsReferrers(t *testing.T) {
	srv := registrytest.NewServer(t)
	push(t, srv, "alice/app:v1", testImage(t, "amd64"))
	ref, err := name.ParseReference(hostOf(srv) + "/alice/app:v1")
	must(t, err)
	desc, err := remote.Head(ref)
	must(t, err)

	empty := putBlob(t, srv, "alice/app", []byte("{}"))
	sig := putBlob(t, srv, "alice/app", []byte(`{"signature":"<b>not html</b>"}`))
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},`+
		`"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":%q,"size":33}],`+
		`"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
		empty, sig, desc.MediaType, desc.Digest.String(), desc.Size)
	md := digest.FromString(manifest)
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/v2/alice/app/manifests/"+md.String(), strings.NewReader(manifest))
	must(t, err)
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push the signature: %d", resp.StatusCode)
	}

	b := newBrowser(t, srv)
	page := b.get("/r/alice/app/tags/v1").body
	wantContains(t, "tag page", text(page), "application/vnd.dev.sigstore.bundle.v0.3+json", md.Encoded()[:12])
	wantContains(t, "tag page", page, `href="/r/alice/app/manifests/`+md.String()+`"`)
	sigPage := b.get("/r/alice/app/manifests/" + md.String())
	if sigPage.code != http.StatusOK {
		t.Fatalf("referrer page = %d", sigPage.code)
	}
	wantContains(t, "referrer page", text(sigPage.body), "Artifact type", "application/vnd.dev.sigstore.bundle.v0.3+json")
	wantLacks(t, "referrer page", sigPage.body, "Configuration</h2>")
}
