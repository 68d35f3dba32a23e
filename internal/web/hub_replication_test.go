package web_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type ruleAnswer struct {
	ID           int64  `json:"id"`
	Repositories string `json:"repositories"`
	Pattern      string `json:"pattern"`
	URL          string `json:"url"`
	DestPrefix   string `json:"dest_prefix"`
	Username     string `json:"username"`
	HasPassword  bool   `json:"has_password"`
	Password     string `json:"password"`
	CreatedBy    string `json:"created_by"`
	Status       *struct {
		Pending    int64   `json:"pending"`
		LagSeconds float64 `json:"lag_seconds"`
		Failures   int64   `json:"failures"`
	} `json:"status"`
	Count   int          `json:"count"`
	Results []ruleAnswer `json:"results"`
	Errors  []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// TestHubAPI_Replication: a namespace's owners (and an org's admins)
// manage its replication rules; others are refused, anonymous callers
// asked to sign in; bad rules are 400 with a spec error body; a rule of
// another namespace is not found through this one; the password is
// stored sealed and never answered back; changes are audited; a push
// shows in the rule's backlog.
func TestHubAPI_Replication(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	alice, bob, carol := basic("alice", userPassword), basic("bob", userPassword), basic("carol", userPassword)
	call := func(method, path, body string, header map[string]string) (int, ruleAnswer) {
		t.Helper()
		if body == "" && method == http.MethodPost {
			body = "{}" // the API's CSRF guard wants a JSON body on a POST
		}
		var out ruleAnswer
		return callAPI(t, srv.URL, method, path, body, header, &out), out
	}
	const secret = "dest-password-Zq81"
	code, r := call("POST", "/v2/namespaces/alice/replication",
		`{"url": "https://site-b.example", "repositories": "team/*", "dest_prefix": "b", "username": "robot", "password": "`+secret+`"}`, alice)
	if code != 201 || r.Pattern != "alice/team/*" || r.Repositories != "team/*" || r.DestPrefix != "b" || r.Username != "robot" ||
		!r.HasPassword || r.Password != "" || r.CreatedBy != "alice" || r.Status == nil {
		t.Fatalf("alice creates a rule: %d %+v", code, r)
	}
	rule := fmt.Sprintf("/v2/namespaces/alice/replication/%d", r.ID)
	_, bobs := call("POST", "/v2/namespaces/bob/replication", `{"url": "http://bob.example"}`, bob)

	cases := []apiCase{
		{"anonymous is asked to sign in", "GET", "/v2/namespaces/alice/replication", "", nil, 401, ""},
		{"another user may not list", "GET", "/v2/namespaces/alice/replication", "", bob, 403, ""},
		{"another user may not create", "POST", "/v2/namespaces/alice/replication", `{"url": "http://x.example"}`, bob, 403, ""},
		{"another user may not delete", "DELETE", rule, "", bob, 403, ""},
		{"another user may not reconcile", "POST", rule + "/reconcile", "", bob, 403, ""},
		{"an org admin creates the org's", "POST", "/v2/namespaces/acme/replication", `{"url": "http://acme.example"}`, carol, 201, ""},
		{"a URL that is not http", "POST", "/v2/namespaces/alice/replication", `{"url": "ftp://x.example"}`, alice, 400, "REPLICATION_RULE_INVALID"},
		{"no URL", "POST", "/v2/namespaces/alice/replication", `{}`, alice, 400, "REPLICATION_RULE_INVALID"},
		{"a pattern that is no name", "POST", "/v2/namespaces/alice/replication", `{"url": "http://x.example", "repositories": "../bob/*"}`, alice, 400, "REPLICATION_RULE_INVALID"},
		{"an unknown field", "POST", "/v2/namespaces/alice/replication", `{"url": "http://x.example", "colour": "red"}`, alice, 400, "REPLICATION_RULE_INVALID"},
		{"another namespace's rule is not found here", "GET", fmt.Sprintf("/v2/namespaces/alice/replication/%d", bobs.ID), "", alice, 404, "REPLICATION_RULE_UNKNOWN"},
		{"nor deleted through it", "DELETE", fmt.Sprintf("/v2/namespaces/alice/replication/%d", bobs.ID), "", alice, 404, "REPLICATION_RULE_UNKNOWN"},
		{"no such rule", "PUT", "/v2/namespaces/alice/replication/99999", `{"url": "http://x.example"}`, alice, 404, "REPLICATION_RULE_UNKNOWN"},
		{"an id that is no number", "GET", "/v2/namespaces/alice/replication/first", "", alice, 404, "REPLICATION_RULE_UNKNOWN"},
		{"reconcile now", "POST", rule + "/reconcile", "", alice, 202, ""},
	}
	runAPICases(t, srv.URL, cases)

	// The password is sealed in the database: its text is nowhere there.
	db, err := os.ReadFile(filepath.Join(srv.DataDir, "wharf.db"))
	must(t, err)
	wal, _ := os.ReadFile(filepath.Join(srv.DataDir, "wharf.db-wal"))
	if strings.Contains(string(db)+string(wal), secret) {
		t.Error("the rule's password is stored in clear")
	}

	// A push inside the pattern is owed to the rule (nothing replicates
	// in this test: no worker runs).
	push(t, srv, "alice/team/app:v1", testImage(t, "amd64"), remoteOpts("alice", userPassword)...)
	push(t, srv, "alice/other:v1", testImage(t, "amd64"), remoteOpts("alice", userPassword)...)
	if code, got := call("GET", rule, "", alice); code != 200 || got.Status.Pending != 1 || got.Status.LagSeconds < 0 {
		t.Fatalf("the rule after a push: %d %+v", code, got)
	}

	// An update without a password keeps the stored one.
	code, r = call("PUT", rule, `{"url": "https://site-c.example"}`, alice)
	if code != 200 || r.Pattern != "alice/*" || r.URL != "https://site-c.example" || !r.HasPassword {
		t.Fatalf("alice updates her rule: %d %+v", code, r)
	}
	if code, list := call("GET", "/v2/namespaces/alice/replication", "", alice); code != 200 || list.Count != 1 || list.Results[0].Password != "" {
		t.Fatalf("alice lists her rules: %d %+v", code, list)
	}
	if code, _ := call("DELETE", rule, "", alice); code != 204 {
		t.Fatalf("alice deletes her rule: %d", code)
	}
	if code, _ := call("GET", rule, "", alice); code != 404 {
		t.Fatalf("the deleted rule: %d, want 404", code)
	}
	for _, line := range []string{"replication rule created", "replication rule changed", "replication rule deleted", "replication reconcile requested"} {
		if logs.count(line, "user=alice") != 1 {
			t.Errorf("want one audit line %q by alice in the log", line)
		}
	}
}

// apiCase is one call of a settings API and the status (and, when not
// "", the one spec error code) it must be answered with.
type apiCase struct {
	name, method, path, body string
	header                   map[string]string
	want                     int
	wantCode                 string
}

// runAPICases makes each call against the server at url as a subtest.
func runAPICases(t *testing.T, url string, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == "" && tc.method == http.MethodPost {
				body = "{}" // the API's CSRF guard wants a JSON body on a POST
			}
			var got struct {
				Errors []struct{ Code, Message string } `json:"errors"`
			}
			code := callAPI(t, url, tc.method, tc.path, body, tc.header, &got)
			if code != tc.want {
				t.Fatalf("%s %s = %d %+v, want %d", tc.method, tc.path, code, got, tc.want)
			}
			if tc.wantCode != "" && (len(got.Errors) != 1 || got.Errors[0].Code != tc.wantCode || got.Errors[0].Message == "") {
				t.Errorf("errors = %+v, want one %s with a message", got.Errors, tc.wantCode)
			}
		})
	}
}
