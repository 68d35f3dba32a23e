package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

type hookAnswer struct {
	ID           int64    `json:"id"`
	Repositories string   `json:"repositories"`
	Pattern      string   `json:"pattern"`
	Events       []string `json:"events"`
	Format       string   `json:"format"`
	Secrets      []string `json:"secrets"`
	CreatedBy    string   `json:"created_by"`
	Count        int      `json:"count"`
	Errors       []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func callHook(t *testing.T, url, method, path, body string, header map[string]string) (int, hookAnswer) {
	t.Helper()
	if body == "" && method == http.MethodPost {
		body = "{}" // the API's CSRF guard wants a JSON body on a POST
	}
	var out hookAnswer
	return callAPI(t, url, method, path, body, header, &out), out
}

// TestHubAPI_Webhooks: a namespace's owners (and an org's admins) manage
// its hooks; others are refused, anonymous callers asked to sign in; bad
// hooks are 400 with a spec error body naming what is wrong; a hook of
// another namespace is not found through this one; changes are audited.
func TestHubAPI_Webhooks(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	alice, bob, carol := basic("alice", userPassword), basic("bob", userPassword), basic("carol", userPassword)
	call := func(method, path, body string, header map[string]string) (int, hookAnswer) {
		t.Helper()
		return callHook(t, srv.URL, method, path, body, header)
	}
	code, h := call("POST", "/v2/namespaces/alice/webhooks",
		`{"url": "https://ci.example/hook", "events": ["push", "delete"], "repositories": "team/*"}`, alice)
	if code != 201 || h.Pattern != "alice/team/*" || h.Repositories != "team/*" || h.Format != "cncf" ||
		len(h.Secrets) != 1 || h.CreatedBy != "alice" || strings.Join(h.Events, ",") != "delete,push" {
		t.Fatalf("alice creates a hook: %d %+v", code, h)
	}
	hook := fmt.Sprintf("/v2/namespaces/alice/webhooks/%d", h.ID)
	_, bobs := call("POST", "/v2/namespaces/bob/webhooks", `{"url": "http://bob.example"}`, bob)

	cases := []apiCase{
		{"anonymous is asked to sign in", "GET", "/v2/namespaces/alice/webhooks", "", nil, 401, ""},
		{"another user may not list", "GET", "/v2/namespaces/alice/webhooks", "", bob, 403, ""},
		{"another user may not create", "POST", "/v2/namespaces/alice/webhooks", `{"url": "http://x.example"}`, bob, 403, ""},
		{"another user may not delete", "DELETE", hook, "", bob, 403, ""},
		{"an org admin creates the org's", "POST", "/v2/namespaces/acme/webhooks", `{"url": "http://acme.example", "format": "cloudevents"}`, carol, 201, ""},
		{"a URL that is not http", "POST", "/v2/namespaces/alice/webhooks", `{"url": "ftp://x.example"}`, alice, 400, "WEBHOOK_INVALID"},
		{"an unknown event", "POST", "/v2/namespaces/alice/webhooks", `{"url": "http://x.example", "events": ["explode"]}`, alice, 400, "WEBHOOK_INVALID"},
		{"an unknown format", "POST", "/v2/namespaces/alice/webhooks", `{"url": "http://x.example", "format": "xml"}`, alice, 400, "WEBHOOK_INVALID"},
		{"a pattern that is no name", "POST", "/v2/namespaces/alice/webhooks", `{"url": "http://x.example", "repositories": "A*b"}`, alice, 400, "WEBHOOK_INVALID"},
		{"a secret that is not whsec_", "POST", "/v2/namespaces/alice/webhooks", `{"url": "http://x.example", "secret": "hunter2"}`, alice, 400, "WEBHOOK_INVALID"},
		{"an unknown field", "POST", "/v2/namespaces/alice/webhooks", `{"url": "http://x.example", "colour": "red"}`, alice, 400, "WEBHOOK_INVALID"},
		{"another namespace's hook is not found here", "GET", fmt.Sprintf("/v2/namespaces/alice/webhooks/%d", bobs.ID), "", alice, 404, "WEBHOOK_UNKNOWN"},
		{"no such hook", "DELETE", "/v2/namespaces/alice/webhooks/99999", "", alice, 404, "WEBHOOK_UNKNOWN"},
		{"no such dead delivery", "POST", hook + "/deliveries/12/redeliver", "", alice, 404, "WEBHOOK_UNKNOWN"},
		{"an id that is no number", "GET", "/v2/namespaces/alice/webhooks/first", "", alice, 404, "WEBHOOK_UNKNOWN"},
	}
	runAPICases(t, srv.URL, cases)

	code, h = call("PUT", hook, `{"url": "https://ci.example/v2", "events": ["tag"], "format": "dockerhub"}`, alice)
	if code != 200 || h.Pattern != "alice/*" || h.Format != "dockerhub" || len(h.Secrets) != 1 {
		t.Fatalf("alice updates her hook: %d %+v", code, h)
	}
	if code, list := call("GET", "/v2/namespaces/alice/webhooks", "", alice); code != 200 || list.Count != 1 {
		t.Fatalf("alice lists her hooks: %d %+v", code, list)
	}
	if code, _ := call("DELETE", hook, "", alice); code != 204 {
		t.Fatalf("alice deletes her hook: %d", code)
	}
	if code, _ := call("GET", hook, "", alice); code != 404 {
		t.Fatalf("the deleted hook: %d, want 404", code)
	}
	for _, line := range []string{"webhook created", "webhook changed", "webhook deleted"} {
		if logs.count(line, "user=alice") != 1 {
			t.Errorf("want one audit line %q by alice in the log", line)
		}
	}
}
