package web_test

import (
	"net/http"
	"net/url"
	"testing"
)

// TestAudit_EveryDeleteNamesItsUser: a delete writes one audit line,
// msg=deleted, naming the user, whichever way it came: the OCI API (tag,
// manifest, blob), the web UI (tag, repository) or the Hub API (tag,
// repository).
func TestAudit_EveryDeleteNamesItsUser(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	alice := remoteOpts("alice", userPassword)
	img := testImage(t, "arm64")
	for _, ref := range []string{"alice/pub:oci-tag", "alice/pub:ui-tag", "alice/pub:hub-tag", "alice/ui-repo:v1", "alice/hub-repo:v1", "acme/secret:carols"} {
		opts := alice
		if ref == "acme/secret:carols" {
			opts = remoteOpts("carol", userPassword)
		}
		push(t, srv, ref, img, opts...)
	}
	manifest, err := img.Digest()
	must(t, err)
	layers, err := img.Layers()
	must(t, err)
	layer, err := layers[0].Digest()
	must(t, err)

	call := func(user, secret, method, path string) {
		t.Helper()
		b := newBrowser(t, srv)
		if resp := b.do(method, path, nil, basic(user, secret)); resp.code/100 != 2 {
			t.Fatalf("%s %s as %s = %d %s", method, path, user, resp.code, resp.body)
		}
	}
	// The OCI API, with Basic credentials.
	call("alice", userPassword, "DELETE", "/v2/alice/pub/manifests/oci-tag")
	call("carol", userPassword, "DELETE", "/v2/acme/secret/blobs/"+layer.String())
	// The web UI, signed in.
	ui := newBrowser(t, srv)
	ui.signIn("alice", userPassword)
	if resp := ui.post("/r/alice/pub/tags/ui-tag", url.Values{"op": {"delete"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("web UI tag delete = %d %s", resp.code, resp.body)
	}
	if resp := ui.post("/r/alice/ui-repo/settings", url.Values{"op": {"delete"}, "confirm": {"alice/ui-repo"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("web UI repository delete = %d %s", resp.code, resp.body)
	}
	// The Hub API.
	call("alice", userPassword, "DELETE", "/v2/repositories/alice/pub/tags/hub-tag")
	call("admin", adminPassword, "DELETE", "/v2/namespaces/alice/repositories/hub-repo")
	// The OCI API again, by digest, once the tags above are gone.
	call("carol", userPassword, "DELETE", "/v2/acme/secret/manifests/"+manifest.String())

	for _, want := range [][]string{
		{"user=alice", "kind=tag", "repository=alice/pub", "reference=oci-tag"},
		{"user=carol", "kind=blob", "repository=acme/secret", "reference=" + layer.String()},
		{"user=alice", "kind=tag", "repository=alice/pub", "reference=ui-tag"},
		{"user=alice", "kind=repository", "repository=alice/ui-repo"},
		{"user=alice", "kind=tag", "repository=alice/pub", "reference=hub-tag"},
		{"user=admin", "kind=repository", "repository=alice/hub-repo"},
		{"user=carol", "kind=manifest", "repository=acme/secret", "reference=" + manifest.String()},
	} {
		if n := logs.count(append([]string{"msg=deleted "}, want...)...); n != 1 {
			t.Errorf("%d audit lines with %q, want 1", n, want)
		}
	}
	if n := logs.count("msg=deleted "); n != 7 {
		t.Errorf("%d delete audit lines for 7 deletes, want 7", n)
	}
}
