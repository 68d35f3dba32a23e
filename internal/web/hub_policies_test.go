package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

type policyAnswer struct {
	Pattern  string                           `json:"pattern"`
	Policies []policyRecord                   `json:"policies"`
	Errors   []struct{ Code, Message string } `json:"errors"`
}

type policyRecord struct {
	Key, Value, Pattern string
	Inherited           bool
	SetBy               string `json:"set_by"`
}

// floating is the answer's floating-tags entry (every known key is
// listed; this test changes only that one).
func (a policyAnswer) floating() policyRecord {
	for _, p := range a.Policies {
		if p.Key == "floating-tags" {
			return p
		}
	}
	return policyRecord{}
}

// callJSON sends a JSON body (or none) with headers and decodes the answer.
func callJSON(t *testing.T, url, method, path, body string, header map[string]string) (int, policyAnswer) {
	t.Helper()
	var out policyAnswer
	return callAPI(t, url, method, path, body, header, &out), out
}

// callAPI sends a JSON body (or none) with headers, decodes the answer
// into out and returns the status.
func callAPI(t *testing.T, url, method, path, body string, header map[string]string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url+path, rd)
	must(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		data, err := io.ReadAll(resp.Body)
		must(t, err)
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s = %d, not JSON: %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

// TestHubAPI_Policies: owners and admins set and remove the policies of a
// repository and of a namespace; readers see them, with where each value
// comes from; others are refused; bad keys and values are 400 with a spec
// error body; every change is audited with its user.
func TestHubAPI_Policies(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	alice, bob, carol := basic("alice", userPassword), basic("bob", userPassword), basic("carol", userPassword)
	call := func(method, path, body string, header map[string]string) (int, policyAnswer) {
		t.Helper()
		return callJSON(t, srv.URL, method, path, body, header)
	}

	code, got := call("POST", "/v2/namespaces/alice/policies", `{"floating-tags":"semver"}`, alice)
	if code != 200 || got.Pattern != "alice/*" || got.floating().Value != "semver" || got.floating().Inherited {
		t.Fatalf("alice sets alice/*: %d %+v", code, got)
	}
	// A repository inherits the namespace's value; anonymous readers of a
	// public repository see it.
	code, got = call("GET", "/v2/namespaces/alice/repositories/pub/policies", "", nil)
	if code != 200 || got.Pattern != "alice/pub" || got.floating().Value != "semver" || got.floating().Pattern != "alice/*" ||
		!got.floating().Inherited || got.floating().SetBy != "alice" {
		t.Errorf("anonymous reads alice/pub: %d %+v", code, got)
	}
	code, got = call("POST", "/v2/namespaces/alice/repositories/pub/policies/", `{"floating-tags":"off"}`, alice)
	if code != 200 || got.floating().Value != "off" || got.floating().Inherited {
		t.Errorf("alice sets alice/pub: %d %+v", code, got)
	}
	// An organisation's admin manages its repositories.
	if code, got = call("POST", "/v2/namespaces/acme/repositories/secret/policies", `{"floating-tags":"semver"}`, carol); code != 200 {
		t.Errorf("carol (acme admin) sets acme/secret: %d %+v", code, got)
	}

	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
		wantCode                 string
	}{
		{"anonymous may not change", "POST", "/v2/namespaces/alice/policies", `{"floating-tags":"off"}`, nil, 401, ""},
		{"another user may not change", "POST", "/v2/namespaces/alice/policies", `{"floating-tags":"off"}`, bob, 403, ""},
		{"another user may not remove", "DELETE", "/v2/namespaces/alice/policies/floating-tags", "", bob, 403, ""},
		{"a private repository's are hidden", "GET", "/v2/namespaces/alice/repositories/priv/policies", "", bob, 404, ""},
		{"a namespace's are for its members", "GET", "/v2/namespaces/alice/policies", "", bob, 403, ""},
		{"unknown key", "POST", "/v2/namespaces/alice/policies", `{"floating-tag":"semver"}`, alice, 400, "POLICY_INVALID"},
		{"bad value", "POST", "/v2/namespaces/alice/policies", `{"floating-tags":"yes"}`, alice, 400, "POLICY_INVALID"},
		{"not an object of strings", "POST", "/v2/namespaces/alice/policies", `{"floating-tags":true}`, alice, 400, "POLICY_INVALID"},
		{"nothing to set", "POST", "/v2/namespaces/alice/policies", `{}`, alice, 400, "POLICY_INVALID"},
		{"remove what is not set", "DELETE", "/v2/namespaces/alice/repositories/priv/policies/floating-tags", "", alice, 404, "POLICY_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := call(tc.method, tc.path, tc.body, tc.header)
			if code != tc.want {
				t.Errorf("%s %s = %d %+v, want %d", tc.method, tc.path, code, got, tc.want)
			}
			if tc.wantCode != "" && (len(got.Errors) != 1 || got.Errors[0].Code != tc.wantCode || got.Errors[0].Message == "") {
				t.Errorf("%s %s: errors %+v, want one %s with a message", tc.method, tc.path, got.Errors, tc.wantCode)
			}
		})
	}
	if _, got := call("POST", "/v2/namespaces/alice/policies", `{"floating-tag":"semver"}`, alice); !strings.Contains(got.Errors[0].Message, `unknown policy key "floating-tag"`) {
		t.Errorf("unknown key message: %q", got.Errors[0].Message)
	}

	if code, _ := call("DELETE", "/v2/namespaces/alice/repositories/pub/policies/floating-tags", "", alice); code != 204 {
		t.Errorf("alice removes alice/pub floating-tags: %d", code)
	}
	if code, got = call("GET", "/v2/namespaces/alice/repositories/pub/policies", "", alice); got.floating().Value != "semver" {
		t.Errorf("after removal alice/pub inherits again: %d %+v", code, got)
	}
	if code, got = call("GET", "/v2/namespaces/acme/policies", "", carol); code != 200 || got.Pattern != "acme/*" || got.floating().Pattern != "" {
		t.Errorf("carol reads acme/*, which sets nothing: %d %+v", code, got)
	}
	// The admin manages anyone's.
	if code, _ := call("DELETE", "/v2/namespaces/alice/policies/floating-tags", "", basic("admin", adminPassword)); code != 204 {
		t.Errorf("admin removes alice/*: %d", code)
	}

	for _, want := range [][]string{
		{`msg="policy set"`, "user=alice", "pattern=alice/*", "key=floating-tags", "value=semver"},
		{`msg="policy set"`, "user=alice", "pattern=alice/pub", "value=off"},
		{`msg="policy set"`, "user=carol", "pattern=acme/secret"},
		{`msg="policy removed"`, "user=alice", "pattern=alice/pub", "key=floating-tags"},
		{`msg="policy removed"`, "user=admin", "pattern=alice/*"},
	} {
		if n := logs.count(want...); n != 1 {
			t.Errorf("%d audit lines with %q, want 1", n, want)
		}
	}
	if n := logs.count(`msg="policy set"`); n != 3 {
		t.Errorf("%d policy set lines, want 3 (refused changes set nothing)", n)
	}
}
