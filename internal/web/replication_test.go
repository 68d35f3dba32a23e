package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

var ruleIDRE = regexp.MustCompile(`data-rule="(\d+)"`)

// TestNamespacePage_Replication: the namespace's owner adds a rule from
// the page, sees its backlog after a push, asks for a reconcile and
// deletes it; the password is never on the page; another user neither
// sees the panel nor may post its forms; a bad URL is refused with what
// is wrong.
func TestNamespacePage_Replication(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	seedAccounts(t, srv)
	alice, bob := newBrowser(t, srv), newBrowser(t, srv)
	alice.signIn("alice", userPassword)
	bob.signIn("bob", userPassword)

	if page := bob.get("/u/alice"); strings.Contains(page.body, `id="replication-h"`) {
		t.Error("bob sees alice's replication panel")
	}
	const password = "site-b-password-7Hq"
	add := url.Values{"op": {"replication-add"}, "url": {"https://site-b.example"}, "repositories": {"pub"},
		"username": {"robot"}, "password": {password}}
	if resp := bob.post("/u/alice", add); resp.code != http.StatusForbidden {
		t.Fatalf("bob adds a rule to alice: %d", resp.code)
	}
	bad := url.Values{"op": {"replication-add"}, "url": {"javascript:alert(1)"}}
	if resp := alice.post("/u/alice", bad); resp.code != http.StatusBadRequest || !strings.Contains(resp.body, "want http(s)://host") {
		t.Fatalf("alice adds a bad URL: %d %s", resp.code, resp.body)
	}
	if page := alice.get("/u/alice"); !strings.Contains(page.body, "No replication rules yet.") {
		t.Fatal("alice's page has no empty replication panel")
	}
	if resp := alice.post("/u/alice", add); resp.code != http.StatusSeeOther || !strings.HasSuffix(resp.header.Get("Location"), "#replication-h") {
		t.Fatalf("alice adds a rule: %d %v %s", resp.code, resp.header, resp.body)
	}
	push(t, srv, "alice/pub:v2", testImage(t, "arm64"), remoteOpts("alice", userPassword)...)
	page := alice.get("/u/alice")
	m := ruleIDRE.FindStringSubmatch(page.body)
	if m == nil || !strings.Contains(page.body, "https://site-b.example") || !strings.Contains(page.body, "(password stored)") ||
		!strings.Contains(page.body, "1 pending") {
		t.Fatalf("alice's page after adding a rule and pushing: no rule with one event pending\n%s", page.body)
	}
	if strings.Contains(page.body, password) {
		t.Fatal("the rule's password is on the page")
	}
	rule := m[1]
	if resp := alice.post("/u/alice", url.Values{"op": {"replication-reconcile"}, "rule": {rule}}); resp.code != http.StatusSeeOther {
		t.Fatalf("reconcile now: %d %s", resp.code, resp.body)
	}
	if resp := bob.post("/u/alice", url.Values{"op": {"replication-rm"}, "rule": {rule}}); resp.code != http.StatusForbidden {
		t.Fatalf("bob deletes alice's rule: %d", resp.code)
	}
	if resp := alice.post("/u/alice", url.Values{"op": {"replication-rm"}, "rule": {rule}}); resp.code != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", resp.code, resp.body)
	}
	if page := alice.get("/u/alice"); ruleIDRE.MatchString(page.body) {
		t.Error("the deleted rule is still listed")
	}
}
