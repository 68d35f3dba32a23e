package distribution_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/registry"
)

// quotaServer is an open registry whose namespace alice has a 100-byte
// quota.
func quotaServer(t *testing.T) (*httptest.Server, *registry.Service) {
	t.Helper()
	svc := uploadService(t)
	if err := svc.Policies().Set(t.Context(), "alice/*", map[string]string{registry.KeyQuota: "100B"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(distribution.New(svc, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv, svc
}

type quotaAnswer struct {
	code     int
	location string
	errCode  string
	message  string
}

func quotaDo(t *testing.T, srv *httptest.Server, method, path string, body []byte, chunked bool, header ...string) quotaAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
	}
	if strings.HasPrefix(path, "http") {
		path = strings.TrimPrefix(path, srv.URL)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := quotaAnswer{code: resp.StatusCode, location: resp.Header.Get("Location")}
	if resp.StatusCode >= 400 && method != http.MethodHead {
		var e struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || len(e.Errors) != 1 {
			t.Fatalf("%s %s: status %d without one spec error (%v)", method, path, resp.StatusCode, err)
		}
		a.errCode, a.message = e.Errors[0].Code, e.Errors[0].Message
	}
	return a
}

func wantDenied(t *testing.T, step string, a quotaAnswer, message string) {
	t.Helper()
	if a.code != http.StatusForbidden || a.errCode != "DENIED" || !strings.Contains(a.message, message) {
		t.Errorf("%s: %d %s %q; want 403 DENIED saying %q", step, a.code, a.errCode, a.message, message)
	}
}

// pushBlob pushes content to repo monolithically (POST ?digest=).
func quotaPushBlob(t *testing.T, srv *httptest.Server, repo string, content []byte) quotaAnswer {
	t.Helper()
	return quotaDo(t, srv, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(content).String(), content, false)
}

// TestQuota_RefusesPushesOverTheNamespacesQuota walks a namespace up to
// and over its quota: what can be refused before the bytes are stored is,
// the manifest is refused once its blobs went over, other namespaces are
// untouched, and deleting gives the space back.
func TestQuota_RefusesPushesOverTheNamespacesQuota(t *testing.T) {
	srv, svc := quotaServer(t)
	big := bytes.Repeat([]byte("x"), 150)

	// A monolithic upload declaring more than the quota: refused, nothing stored.
	wantDenied(t, "a 150-byte blob", quotaPushBlob(t, srv, "alice/app", big),
		"namespace alice would be over its 100 B quota: 0 B used, and this upload is 150 B")
	if a := quotaDo(t, srv, http.MethodHead, "/v2/alice/app/blobs/"+digest.FromBytes(big).String(), nil, false); a.code != http.StatusNotFound {
		t.Errorf("the refused blob answers HEAD %d; want 404", a.code)
	}
	// A PATCH with a declared length over the quota, likewise.
	start := quotaDo(t, srv, http.MethodPost, "/v2/alice/app/blobs/uploads/", nil, false)
	if start.code != http.StatusAccepted {
		t.Fatalf("start an upload: %d %s", start.code, start.message)
	}
	wantDenied(t, "a 150-byte chunk", quotaDo(t, srv, http.MethodPatch, start.location, big, false,
		"Content-Type", "application/octet-stream"), "would be over its 100 B quota")

	// Within the quota: accepted. The layer is shared by two repositories
	// of alice and counts once.
	layer, config := bytes.Repeat([]byte("l"), 60), []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	for _, repo := range []string{"alice/app", "alice/web"} {
		if a := quotaPushBlob(t, srv, repo, layer); a.code != http.StatusCreated {
			t.Fatalf("push 60 bytes to %s: %d %s", repo, a.code, a.message)
		}
	}
	if u, err := svc.NamespaceUsage(t.Context(), "alice"); err != nil || u.Bytes != 60 || u.Quota != 100 {
		t.Fatalf("alice's usage = %+v, %v; want 60 of 100 bytes", u, err)
	}

	// A chunked upload declares no length: the bytes are stored and go
	// over the quota (60 + 79 bytes).
	start = quotaDo(t, srv, http.MethodPost, "/v2/alice/app/blobs/uploads/", nil, false)
	patched := quotaDo(t, srv, http.MethodPatch, start.location, config, true, "Content-Type", "application/octet-stream")
	if patched.code != http.StatusAccepted {
		t.Fatalf("chunked PATCH: %d %s", patched.code, patched.message)
	}
	sep := "?"
	if strings.Contains(patched.location, "?") {
		sep = "&"
	}
	if a := quotaDo(t, srv, http.MethodPut, patched.location+sep+"digest="+digest.FromBytes(config).String(), nil, false); a.code != http.StatusCreated {
		t.Fatalf("complete the chunked upload: %d %s", a.code, a.message)
	}

	// So the manifest is refused, naming the usage.
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest.FromBytes(config), len(config), digest.FromBytes(layer), len(layer))
	ct := []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}
	over := fmt.Sprintf("namespace alice is over its 100 B quota: %d B used", 60+len(config))
	wantDenied(t, "the manifest", quotaDo(t, srv, http.MethodPut, "/v2/alice/app/manifests/v1", manifest, false, ct...), over)
	// And so is any new upload, before it stores a byte.
	wantDenied(t, "a new upload", quotaDo(t, srv, http.MethodPost, "/v2/alice/web/blobs/uploads/", nil, false), over)
	// A mount from another namespace would add the blob.
	if a := quotaPushBlob(t, srv, "bob/app", []byte("bob's")); a.code != http.StatusCreated {
		t.Fatalf("bob, without a quota, pushes: %d %s", a.code, a.message)
	}
	wantDenied(t, "a mount from bob", quotaDo(t, srv, http.MethodPost,
		"/v2/alice/app/blobs/uploads/?from=bob/app&mount="+digest.FromBytes([]byte("bob's")).String(), nil, false), over)

	// Deleting is never refused, and gives the space back.
	if a := quotaDo(t, srv, http.MethodDelete, "/v2/alice/web/blobs/"+digest.FromBytes(layer).String(), nil, false); a.code != http.StatusAccepted {
		t.Fatalf("delete a blob: %d %s", a.code, a.message)
	}
	if a := quotaDo(t, srv, http.MethodDelete, "/v2/alice/app/blobs/"+digest.FromBytes(layer).String(), nil, false); a.code != http.StatusAccepted {
		t.Fatalf("delete a blob: %d %s", a.code, a.message)
	}
	if a := quotaPushBlob(t, srv, "alice/app", layer[:10]); a.code != http.StatusCreated {
		t.Errorf("a push back under the quota: %d %s; want 201", a.code, a.message)
	}
	if u, err := svc.RepositoryUsage(t.Context(), "alice/app"); err != nil || u.Bytes != int64(len(config))+10 {
		t.Errorf("alice/app's usage = %+v, %v; want %d bytes", u, err, len(config)+10)
	}
}
