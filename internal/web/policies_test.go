package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPolicyPages: a repository's settings and a namespace's page show
// the policies in effect with where each comes from; owners set and
// remove them with the forms; writers and members only see them; others
// are refused; a bad value is a 400 page that says what to fix.
func TestPolicyPages(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	alice := newBrowser(t, srv)
	alice.signIn("alice", userPassword)

	// The namespace: set floating-tags=semver on alice/*.
	page := alice.get("/u/alice")
	wantContains(t, "alice's page", text(page.body), "Policies", "floating-tags off default")
	if resp := alice.post("/u/alice", url.Values{"op": {"policy-set"}, "key": {"floating-tags"}, "value": {"semver"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("alice sets alice/* floating-tags = %d %s", resp.code, resp.body)
	}
	wantContains(t, "alice's page after set", text(alice.get("/u/alice?flash=policy-changed").body),
		"The policy was changed.", "floating-tags semver set here by alice")

	// The repository inherits it, then overrides it, then inherits again.
	wantContains(t, "alice/pub settings", text(alice.get("/r/alice/pub/settings").body),
		"floating-tags semver inherited from alice/* by alice")
	if resp := alice.post("/r/alice/pub/settings", url.Values{"op": {"policy-set"}, "key": {"floating-tags"}, "value": {"off"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("alice sets alice/pub floating-tags = %d %s", resp.code, resp.body)
	}
	settings := alice.get("/r/alice/pub/settings").body
	wantContains(t, "alice/pub settings after set", text(settings), "floating-tags off set here by alice")
	wantContains(t, "alice/pub settings form", settings, `<option value="semver">semver</option><option value="off" selected>off</option>`, `value="policy-rm"`)
	if resp := alice.post("/r/alice/pub/settings", url.Values{"op": {"policy-rm"}, "key": {"floating-tags"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("alice removes alice/pub floating-tags = %d %s", resp.code, resp.body)
	}
	wantContains(t, "alice/pub settings after rm", text(alice.get("/r/alice/pub/settings").body), "floating-tags semver inherited from alice/*")

	// Bad input is the user's to fix.
	resp := alice.post("/r/alice/pub/settings", url.Values{"op": {"policy-set"}, "key": {"floating-tags"}, "value": {"sometimes"}})
	if resp.code != http.StatusBadRequest || !strings.Contains(text(resp.body), `floating-tags="sometimes": want semver or off`) {
		t.Errorf("bad value = %d %s", resp.code, text(resp.body))
	}
	resp = alice.post("/u/alice", url.Values{"op": {"policy-rm"}, "key": {"retention"}})
	if resp.code != http.StatusBadRequest || !strings.Contains(text(resp.body), "alice/* has no retention policy") {
		t.Errorf("removing an unset key = %d %s", resp.code, text(resp.body))
	}

	// Another user may neither change nor (for a namespace) see them.
	bob := newBrowser(t, srv)
	bob.signIn("bob", userPassword)
	if resp := bob.post("/u/alice", url.Values{"op": {"policy-set"}, "key": {"floating-tags"}, "value": {"off"}}); resp.code != http.StatusForbidden {
		t.Errorf("bob changes alice/* = %d, want 403", resp.code)
	}
	if resp := bob.post("/r/alice/pub/settings", url.Values{"op": {"policy-set"}, "key": {"floating-tags"}, "value": {"off"}}); resp.code != http.StatusForbidden {
		t.Errorf("bob changes alice/pub = %d, want 403", resp.code)
	}
	wantLacks(t, "alice's page as bob", text(bob.get("/u/alice").body), "Policies")

	// An organisation member with write rights sees the settings without
	// the forms; its admin gets the forms.
	carol := newBrowser(t, srv)
	carol.signIn("carol", userPassword)
	page = carol.get("/u/acme")
	wantContains(t, "acme's page as its admin", page.body, `action="/u/acme"`, `value="policy-set"`)

	for _, want := range [][]string{
		{`msg="policy set"`, "user=alice", "pattern=alice/*", "value=semver"},
		{`msg="policy set"`, "user=alice", "pattern=alice/pub", "value=off"},
		{`msg="policy removed"`, "user=alice", "pattern=alice/pub"},
	} {
		if n := logs.count(want...); n != 1 {
			t.Errorf("%d audit lines with %q, want 1", n, want)
		}
	}
	if n := logs.count("access denied", "user=bob"); n != 2 {
		t.Errorf("%d access denied lines for bob's two refused changes, want 2", n)
	}
}

// TestFloatingTagsInThePages: under floating-tags=semver, the repository
// page shows the version lines and the tags page says the registry moved
// the floating tags for the pusher.
func TestFloatingTagsInThePages(t *testing.T) {
	srv := accountsWorld(t)
	alice := newBrowser(t, srv)
	alice.signIn("alice", userPassword)
	if resp := alice.post("/r/alice/pub/settings", url.Values{"op": {"policy-set"}, "key": {"floating-tags"}, "value": {"semver"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("set floating-tags = %d %s", resp.code, resp.body)
	}
	for i, v := range []string{"1.0.0", "1.0.1", "1.1.0", "2.0.0-rc.1"} {
		push(t, srv, "alice/pub:"+v, testImage(t, []string{"amd64", "arm64", "386", "s390x"}[i]), remoteOpts("alice", userPassword)...)
	}
	wantContains(t, "alice/pub overview", text(alice.get("/r/alice/pub").body),
		"Version lines latest → 1.1.0 1 → 1.1.0 1.1 → 1.1.0 1.0 → 1.0.1")
	wantContains(t, "alice/pub tags", text(alice.get("/r/alice/pub/tags").body), "by wharf, moved for alice")
}
