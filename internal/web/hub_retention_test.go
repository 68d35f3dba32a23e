package web_test

import (
	"encoding/json"
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
			body := ""
			if tc.method == "POST" {
				body = "{}"
			}
			code, got := callJSON(t, srv.URL, tc.method, tc.path, body, tc.header)
			if code != tc.want {
				t.Errorf("%s %s = %d %+v, want %d", tc.method, tc.path, code, got, tc.want)
			}
			if tc.wantCode != "" && (len(got.Errors) != 1 || got.Errors[0].Code != tc.wantCode || got.Errors[0].Message == "") {
				t.Errorf("%s %s: errors %+v, want one %s with a message", tc.method, tc.path, got.Errors, tc.wantCode)
			}
		})
	}
	// alice's run deleted both v1 tags (no rule keeps them), as alice asked.
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v2/retention/runs", nil)
	must(t, err)
	req.Header.Set("Authorization", admin["Authorization"])
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var runs struct {
		Runs []struct {
			Actor       string `json:"actor"`
			Replica     string `json:"replica"`
			DeletedTags int    `json:"deleted_tags"`
		} `json:"runs"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&runs))
	if len(runs.Runs) != 1 || runs.Runs[0].Actor != "alice" || runs.Runs[0].DeletedTags != 2 || runs.Runs[0].Replica == "" {
		t.Errorf("runs: %+v", runs)
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
