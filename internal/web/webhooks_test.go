package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

var hookIDRE = regexp.MustCompile(`data-hook="(\d+)"`)
var deadRE = regexp.MustCompile(`data-dead="(\d+)"`)

// TestNamespacePage_Webhooks: the namespace's owner adds a hook, rotates
// its secret and redelivers a dead letter from the page; another user
// neither sees the panel nor may post its forms; a bad URL is refused
// with what is wrong.
func TestNamespacePage_Webhooks(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	var got atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer rc.Close()
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword),
		registrytest.WithConfig(func(c *config.Config) { c.Webhooks.MaxAttempts = 1 }))
	seedAccounts(t, srv)
	alice, bob := newBrowser(t, srv), newBrowser(t, srv)
	alice.signIn("alice", userPassword)
	bob.signIn("bob", userPassword)

	if page := bob.get("/u/alice"); strings.Contains(page.body, `id="webhooks-h"`) {
		t.Error("bob sees alice's webhooks panel")
	}
	add := url.Values{"op": {"webhook-add"}, "url": {rc.URL + "/hook"}, "format": {"cloudevents"}, "event": {"push"}}
	if resp := bob.post("/u/alice", add); resp.code != http.StatusForbidden {
		t.Fatalf("bob adds a hook to alice: %d", resp.code)
	}
	bad := url.Values{"op": {"webhook-add"}, "url": {"javascript:alert(1)"}, "event": {"push"}}
	if resp := alice.post("/u/alice", bad); resp.code != http.StatusBadRequest || !strings.Contains(resp.body, "want an http:// or https:// URL") {
		t.Fatalf("alice adds a bad URL: %d %s", resp.code, resp.body)
	}
	if resp := alice.post("/u/alice", add); resp.code != http.StatusSeeOther || !strings.HasSuffix(resp.header.Get("Location"), "#webhooks-h") {
		t.Fatalf("alice adds a hook: %d %v", resp.code, resp.header)
	}
	page := alice.get("/u/alice")
	m := hookIDRE.FindStringSubmatch(page.body)
	if m == nil || !strings.Contains(page.body, rc.URL+"/hook") || strings.Count(page.body, `class="secret"`) != 1 {
		t.Fatalf("alice's page after adding: no hook with one secret\n%s", page.body)
	}
	hook := m[1]

	if resp := alice.post("/u/alice", url.Values{"op": {"webhook-rotate"}, "hook": {hook}}); resp.code != http.StatusSeeOther {
		t.Fatalf("rotate: %d %s", resp.code, resp.body)
	}
	if page := alice.get("/u/alice"); strings.Count(page.body, `class="secret"`) != 2 || !strings.Contains(page.body, "Drop the old secret") {
		t.Fatal("during a rotation the page does not show both secrets")
	}
	if resp := alice.post("/u/alice", url.Values{"op": {"webhook-rotate-done"}, "hook": {hook}}); resp.code != http.StatusSeeOther {
		t.Fatalf("finish rotation: %d %s", resp.code, resp.body)
	}

	push(t, srv, "alice/pub:v2", testImage(t, "arm64"), remoteOpts("alice", userPassword)...)
	if _, err := srv.Webhooks.DeliverDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	page = alice.get("/u/alice")
	dead := deadRE.FindStringSubmatch(page.body)
	if dead == nil || !strings.Contains(page.body, "500 Internal Server Error") {
		t.Fatalf("after one failed attempt (max_attempts 1) the page shows no dead letter\n%s", page.body)
	}
	status.Store(http.StatusOK)
	redeliver := url.Values{"op": {"webhook-redeliver"}, "hook": {hook}, "delivery": {dead[1]}}
	if resp := bob.post("/u/alice", redeliver); resp.code != http.StatusForbidden {
		t.Fatalf("bob redelivers alice's dead letter: %d", resp.code)
	}
	if resp := alice.post("/u/alice", redeliver); resp.code != http.StatusSeeOther {
		t.Fatalf("redeliver: %d %s", resp.code, resp.body)
	}
	if n, err := srv.Webhooks.DeliverDue(t.Context()); err != nil || n != 1 {
		t.Fatalf("DeliverDue after redeliver = %d, %v; want 1", n, err)
	}
	if page := alice.get("/u/alice"); deadRE.MatchString(page.body) || !strings.Contains(page.body, "delivered") {
		t.Error("after the redelivery the page still shows a dead letter, or no delivered one")
	}
	if got.Load() != 2 {
		t.Errorf("the receiver got %d requests, want 2", got.Load())
	}
	if resp := alice.post("/u/alice", url.Values{"op": {"webhook-rm"}, "hook": {hook}}); resp.code != http.StatusSeeOther {
		t.Fatalf("delete: %d", resp.code)
	}
	if page := alice.get("/u/alice"); hookIDRE.MatchString(page.body) {
		t.Error("the deleted hook is still on the page")
	}
}
