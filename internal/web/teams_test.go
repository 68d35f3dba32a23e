package web_test

import (
	"net/http"
	"net/url"
	"testing"
)

// TestTeams_PagesManageUsersOrgsAndMembers: an administrator creates a
// user and an organisation on /admin, the organisation's admin adds and
// removes members on its page, the new member sees its private
// repository; others are refused; every change is audited with its user.
func TestTeams_PagesManageUsersOrgsAndMembers(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	admin := newBrowser(t, srv)
	admin.signIn("admin", adminPassword)
	for _, f := range []url.Values{
		{"op": {"user-add"}, "name": {"dave"}, "password": {userPassword}},
		{"op": {"org-add"}, "name": {"lab"}},
	} {
		if resp := admin.post("/admin", f); resp.code != http.StatusSeeOther {
			t.Fatalf("admin %s: %d %s", f.Get("op"), resp.code, text(resp.body))
		}
	}
	if resp := admin.post("/admin", url.Values{"op": {"user-add"}, "name": {"dave"}, "password": {userPassword}}); resp.code != http.StatusBadRequest {
		t.Errorf("a second dave: %d; want 400", resp.code)
	}
	if resp := admin.post("/u/lab", url.Values{"op": {"member-set"}, "user": {"carol"}, "role": {"admin"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("admin adds carol to lab: %d %s", resp.code, text(resp.body))
	}
	push(t, srv, "lab/secret:v1", testImage(t, "amd64"), remoteOpts("carol", userPassword)...)

	// carol, lab's admin, adds dave; dave sees lab's private repository.
	carol := newBrowser(t, srv)
	carol.signIn("carol", userPassword)
	wantContains(t, "lab's page to carol", text(carol.get("/u/lab").body), "Members", "carol admin")
	if resp := carol.post("/u/lab", url.Values{"op": {"member-set"}, "user": {"dave"}, "role": {"read"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("carol adds dave: %d %s", resp.code, text(resp.body))
	}
	dave := newBrowser(t, srv)
	dave.signIn("dave", userPassword)
	wantContains(t, "explore to dave", dave.get("/").body, `href="/r/lab/secret"`)
	// dave may read, not manage.
	if resp := dave.post("/u/lab", url.Values{"op": {"member-rm"}, "user": {"carol"}}); resp.code != http.StatusForbidden {
		t.Errorf("dave removes carol: %d; want 403", resp.code)
	}
	if resp := dave.get("/admin"); resp.code != http.StatusForbidden {
		t.Errorf("dave opens /admin: %d; want 403", resp.code)
	}
	if resp := carol.post("/u/lab", url.Values{"op": {"member-rm"}, "user": {"dave"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("carol removes dave: %d %s", resp.code, text(resp.body))
	}
	wantLacks(t, "explore to dave after his removal", dave.get("/").body, `href="/r/lab/secret"`)

	// The administrator resets dave's password, then removes him.
	if resp := admin.post("/admin", url.Values{"op": {"user-password"}, "name": {"dave"}, "password": {"another-long-password"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("reset dave's password: %d %s", resp.code, text(resp.body))
	}
	fresh := newBrowser(t, srv)
	fresh.signIn("dave", "another-long-password")
	if resp := admin.post("/admin", url.Values{"op": {"user-rm"}, "name": {"dave"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("remove dave: %d %s", resp.code, text(resp.body))
	}
	if resp := admin.post("/admin", url.Values{"op": {"user-rm"}, "name": {"admin"}}); resp.code != http.StatusBadRequest {
		t.Errorf("the admin removes themselves: %d; want 400", resp.code)
	}
	// A form without the CSRF token is refused.
	if resp := admin.do(http.MethodPost, "/admin", url.Values{"op": {"org-add"}, "name": {"nocsrf"}}, nil); resp.code != http.StatusForbidden {
		t.Errorf("a form without its CSRF token: %d; want 403", resp.code)
	}

	for _, want := range [][]string{
		{"msg=\"user added\"", "user=dave", "by=admin"},
		{"msg=\"organisation added\"", "org=lab", "by=admin"},
		{"msg=\"organisation member set\"", "org=lab", "user=carol", "role=admin", "by=admin"},
		{"msg=\"organisation member set\"", "org=lab", "user=dave", "role=read", "by=carol"},
		{"msg=\"organisation member removed\"", "org=lab", "user=dave", "by=carol"},
		{"msg=\"password changed\"", "user=dave", "by=admin"},
		{"msg=\"user removed\"", "user=dave", "by=admin"},
		{"access denied", "user=dave"},
	} {
		if n := logs.count(want...); n != 1 {
			t.Errorf("%d audit lines with %q; want 1", n, want)
		}
	}
}

// TestTeams_API: the same through the JSON API, with its refusals.
func TestTeams_API(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	admin, alice, carol := basic("admin", adminPassword), basic("alice", userPassword), basic("carol", userPassword)
	call := func(method, path, body string, header map[string]string) int {
		t.Helper()
		code, _ := callJSON(t, srv.URL, method, path, body, header)
		return code
	}
	for _, c := range []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
	}{
		{"admin creates a user", "POST", "/v2/users", `{"name":"erin","password":"` + userPassword + `"}`, admin, 201},
		{"twice is a conflict", "POST", "/v2/users", `{"name":"erin","password":"` + userPassword + `"}`, admin, 409},
		{"a short password is refused", "POST", "/v2/users", `{"name":"frank","password":"short"}`, admin, 400},
		{"a user may not", "POST", "/v2/users", `{"name":"gina","password":"` + userPassword + `"}`, alice, 403},
		{"anonymous may not", "GET", "/v2/users", ``, nil, 401},
		{"admin lists users", "GET", "/v2/users", ``, admin, 200},
		{"admin creates an org", "POST", "/v2/orgs", `{"name":"guild"}`, admin, 201},
		{"a user may not create one", "POST", "/v2/orgs", `{"name":"other"}`, alice, 403},
		{"admin adds a member", "POST", "/v2/orgs/guild/members", `{"user":"erin","role":"admin"}`, admin, 200},
		{"a bad role is refused", "POST", "/v2/orgs/guild/members", `{"user":"alice","role":"boss"}`, admin, 400},
		{"a non-admin member may not", "POST", "/v2/orgs/acme/members", `{"user":"alice","role":"read"}`, alice, 403},
		{"acme's admin may", "POST", "/v2/orgs/acme/members", `{"user":"alice","role":"read"}`, carol, 200},
		{"acme's admin lists them", "GET", "/v2/orgs/acme/members", ``, carol, 200},
		{"and removes one", "DELETE", "/v2/orgs/acme/members/alice", ``, carol, 200},
		{"a user is no organisation", "GET", "/v2/orgs/alice/members", ``, admin, 404},
		{"admin resets a password", "POST", "/v2/users/erin/password", `{"password":"another-long-password"}`, admin, 204},
		{"the owner makes a repository public", "POST", "/v2/namespaces/alice/repositories/priv/visibility", `{"visibility":"public"}`, alice, 200},
		{"others may not", "POST", "/v2/namespaces/acme/repositories/secret/visibility", `{"visibility":"public"}`, alice, 404},
		{"a bad visibility is refused", "POST", "/v2/namespaces/alice/repositories/priv/visibility", `{"visibility":"secret"}`, alice, 400},
		{"admin removes a user", "DELETE", "/v2/users/erin", ``, admin, 204},
		{"a missing user is 404", "DELETE", "/v2/users/erin", ``, admin, 404},
	} {
		if got := call(c.method, c.path, c.body, c.header); got != c.want {
			t.Errorf("%s: %s %s = %d; want %d", c.name, c.method, c.path, got, c.want)
		}
	}
	if code, _ := callJSON(t, srv.URL, "GET", "/v2/namespaces/alice/repositories/priv", "", nil); code != 200 {
		t.Errorf("anonymous reads alice/priv after it was made public: %d", code)
	}
	for _, want := range [][]string{
		{"msg=\"user added\"", "user=erin", "by=admin"},
		{"msg=\"visibility changed\"", "repository=alice/priv", "visibility=public", "by=alice"},
		{"msg=\"organisation member removed\"", "org=acme", "user=alice", "by=carol"},
		{"msg=\"user removed\"", "user=erin", "by=admin"},
	} {
		if n := logs.count(want...); n != 1 {
			t.Errorf("%d audit lines with %q; want 1", n, want)
		}
	}
}
