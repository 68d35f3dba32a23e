package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

// TestHubAPI_RetentionRights: readers preview, owners run, admins list
// runs; every refusal and bad parameter has a status and, where the API
// is retention's own, a spec error body.
func TestHubAPI_RetentionRights(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	alice, bob, admin := basic("alice", userPassword), basic("bob", userPassword), basic("admin", adminPassword)
	call := func(method, path string, header map[string]string) (int, map[string]json.RawMessage) {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("{}")
		}
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
		must(t, err)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s = %d, not JSON: %s", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode, out
	}
	if code, _ := callJSON(t, srv.URL, "POST", "/v2/namespaces/alice/policies", `{"retention":"match=v2"}`, alice); code != 200 {
		t.Fatalf("alice sets retention: %d", code)
	}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		want               int
		wantCode           string
	}{
		{"anonymous reads a public repository's preview", "GET", "/v2/namespaces/alice/repositories/pub/retention/preview", nil, 200, ""},
		{"a private repository's preview is hidden", "GET", "/v2/namespaces/alice/repositories/priv/retention/preview", bob, 404, ""},
		{"a namespace's preview is for its members", "GET", "/v2/namespaces/alice/retention/preview", bob, 403, ""},
		{"an unknown repository", "GET", "/v2/namespaces/alice/repositories/none/retention/preview", alice, 404, "NAME_UNKNOWN"},
		{"anonymous may not run", "POST", "/v2/namespaces/alice/retention/run", nil, 401, ""},
		{"a reader may not run", "POST", "/v2/namespaces/alice/repositories/pub/retention/run", bob, 403, ""},
		{"anonymous may not list runs", "GET", "/v2/retention/runs", nil, 401, "UNAUTHORIZED"},
		{"a user may not list runs", "GET", "/v2/retention/runs", alice, 403, "DENIED"},
		{"a bad page size", "GET", "/v2/retention/runs?page_size=0", admin, 400, "PAGINATION_NUMBER_INVALID"},
		{"a bad cursor", "GET", "/v2/retention/runs?before=x", admin, 400, "PAGINATION_NUMBER_INVALID"},
		{"the owner runs the namespace's", "POST", "/v2/namespaces/alice/retention/run", alice, 200, ""},
		{"the admin lists runs", "GET", "/v2/retention/runs", admin, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := call(tc.method, tc.path, tc.header)
			if code != tc.want {
				t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, code, got, tc.want)
			}
			if tc.wantCode == "" {
				return
			}
			var errs []struct{ Code, Message string }
			if err := json.Unmarshal(got["errors"], &errs); err != nil || len(errs) != 1 || errs[0].Code != tc.wantCode || errs[0].Message == "" {
				t.Errorf("%s %s: errors %s, want one %s with a message", tc.method, tc.path, got["errors"], tc.wantCode)
			}
		})
	}
	// alice's run deleted both v1 tags (no rule keeps them), as alice asked.
	_, runs := call("GET", "/v2/retention/runs", admin)
	if !strings.Contains(string(runs["runs"]), `"deleted_tags":2`) || !strings.Contains(string(runs["runs"]), `"actor":"alice"`) {
		t.Errorf("runs: %s", runs["runs"])
	}
	if logs.count(`msg="retention run"`, "user=alice", "trigger=manual", "scope=alice/*", "deleted_tags=2") != 1 {
		t.Error("no audit line of alice's run")
	}
	if logs.count("msg=deleted", "user=retention", "kind=tag", "repository=alice/priv", "reference=v1") != 1 {
		t.Error("no audit line of the deletion of alice/priv:v1")
	}
}

// The repository's settings preview retention: what the next run deletes
// and why; without a retention= policy there is no such panel.
func TestRepoSettings_PreviewsRetention(t *testing.T) {
	srv := registrytest.NewServer(t)
	push(t, srv, "team/app:old", testImage(t, "amd64"))
	push(t, srv, "team/app:new", testImage(t, "arm64"))
	b := newBrowser(t, srv)
	if page := b.get("/r/team/app/settings"); page.code != 200 || strings.Contains(page.body, "retention-h") {
		t.Fatalf("settings without a policy: %d, retention panel shown: %v", page.code, strings.Contains(page.body, "retention-h"))
	}
	if code, _ := callJSON(t, srv.URL, "POST", "/v2/namespaces/team/repositories/app/policies", `{"retention":"match=new"}`, nil); code != 200 {
		t.Fatalf("set retention: %d", code)
	}
	page := b.get("/r/team/app/settings")
	if page.code != 200 || !strings.Contains(page.body, `<tr data-retention-delete="old">`) || strings.Contains(page.body, `data-retention-delete="new"`) ||
		!strings.Contains(page.body, "kept by no rule: rule 1: does not match match=new") || !strings.Contains(page.body, "deletes 1 and keeps 1") {
		t.Errorf("settings page %d:\n%s", page.code, page.body)
	}
}
