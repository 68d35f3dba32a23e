package web_test

import "testing"

type usageAnswer struct {
	Name, Namespace, Quota string
	Blobs, Bytes           int64
	QuotaBytes             int64 `json:"quota_bytes"`
	Over                   bool
}

// TestUsage_APIAndBars: the JSON API reports a namespace's and a
// repository's storage against the namespace's quota, to those who may
// see them; the namespace page (for members) and the repository page
// show the bars.
func TestUsage_APIAndBars(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	alice := basic("alice", userPassword)

	var ns usageAnswer
	if code := b.getJSON("/v2/namespaces/alice/usage", alice, &ns); code != 200 || ns.Bytes == 0 || ns.Blobs == 0 || ns.Quota != "none" {
		t.Fatalf("alice's usage: %d %+v; want bytes, blobs and no quota", code, ns)
	}
	var pub usageAnswer
	if code := b.getJSON("/v2/namespaces/alice/repositories/pub/usage", nil, &pub); code != 200 || pub.Bytes == 0 || pub.Bytes >= ns.Bytes || pub.Namespace != "alice" {
		t.Errorf("alice/pub's usage (anonymous, public): %d %+v; want a part of alice's %d bytes", code, pub, ns.Bytes)
	}
	for _, c := range []struct {
		path   string
		header map[string]string
		want   int
	}{
		{"/v2/namespaces/alice/usage", nil, 401},
		{"/v2/namespaces/alice/usage", basic("bob", userPassword), 403},
		{"/v2/namespaces/alice/repositories/priv/usage", basic("bob", userPassword), 404},
		{"/v2/namespaces/acme/usage", basic("carol", userPassword), 200},
	} {
		if code := b.getJSON(c.path, c.header, new(usageAnswer)); code != c.want {
			t.Errorf("GET %s: %d; want %d", c.path, code, c.want)
		}
	}

	if code, got := callJSON(t, srv.URL, "POST", "/v2/namespaces/alice/policies", `{"quota":"1MB"}`, alice); code != 200 {
		t.Fatalf("alice sets a quota: %d %+v", code, got)
	}
	if code, got := callJSON(t, srv.URL, "POST", "/v2/namespaces/alice/repositories/pub/policies", `{"quota":"1MB"}`, alice); code != 400 ||
		len(got.Errors) != 1 || got.Errors[0].Code != "POLICY_INVALID" {
		t.Errorf("a quota on a repository: %d %+v; want 400 POLICY_INVALID", code, got)
	}
	b.getJSON("/v2/namespaces/alice/usage", alice, &ns)
	if ns.QuotaBytes != 1e6 || ns.Quota != "1MB" || ns.Over {
		t.Errorf("alice's usage under a quota: %+v", ns)
	}

	b.signIn("alice", userPassword)
	page := text(b.get("/u/alice").body)
	wantContains(t, "alice's namespace page", page, "Storage", "used of the 1 MB quota of alice")
	wantContains(t, "alice/pub's page", b.get("/r/alice/pub").body, `<meter min="0" max="1000000"`)
	other := newBrowser(t, srv)
	other.signIn("bob", userPassword)
	wantLacks(t, "alice's namespace page to bob", text(other.get("/u/alice").body), "used of the")
}
