package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestHubAPI_ChangesNeedJSONAndThisSite: a browser sends its cached Basic
// credentials with a cross-site form post (text/plain, urlencoded or
// multipart), which must not mint a token or log in; a POST needs a JSON
// body, and a change without the session cookie from another site's
// Origin is refused, while scripts (no Origin) and this site's pages work.
func TestHubAPI_ChangesNeedJSONAndThisSite(t *testing.T) {
	srv := accountsWorld(t)
	tokens := func() int {
		t.Helper()
		toks, err := srv.Auth.ListPATs(context.Background(), "alice")
		must(t, err)
		return len(toks)
	}
	const tokenBody = `{"token_label":"x","scopes":["repo:admin"]}`
	for _, tc := range []struct {
		name, method, path, contentType, origin, body string
		want                                          int
		cookie                                        bool // a (stale) session cookie beside the Basic credentials
	}{
		{"text/plain form post mints no token", "POST", "/v2/access-tokens", "text/plain", "", tokenBody, 415, false},
		{"urlencoded form post", "POST", "/v2/access-tokens/", "application/x-www-form-urlencoded", "", tokenBody, 415, false},
		{"multipart form post", "POST", "/v2/access-tokens", "multipart/form-data; boundary=x", "", tokenBody, 415, false},
		{"no Content-Type", "POST", "/v2/access-tokens", "", "", tokenBody, 415, false},
		{"text/plain login", "POST", "/v2/auth/token", "text/plain", "", `{"identifier":"alice","secret":"` + userPassword + `"}`, 415, false},
		{"text/plain legacy login", "POST", "/v2/users/login", "text/plain", "", `{"username":"alice","password":"` + userPassword + `"}`, 415, false},
		{"JSON from another site", "POST", "/v2/access-tokens", "application/json", "https://evil.example", tokenBody, 403, false},
		{"JSON from an opaque origin", "POST", "/v2/access-tokens", "application/json", "null", tokenBody, 403, false},
		{"login from another site", "POST", "/v2/auth/token", "application/json", "https://evil.example", `{"identifier":"alice","secret":"` + userPassword + `"}`, 403, false},
		{"delete from another site", "DELETE", "/v2/repositories/alice/pub/tags/v1", "", "https://evil.example", "", 403, false},
		{"delete from another port", "DELETE", "/v2/repositories/alice/pub/tags/v1", "", "http://127.0.0.1:1", "", 403, false},
		{"Basic beside a session cookie, from another site", "POST", "/v2/access-tokens", "application/json", "https://evil.example", tokenBody, 403, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tokens()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.SetBasicAuth("alice", userPassword)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.cookie {
				req.AddCookie(&http.Cookie{Name: "wharf_session", Value: "stale"})
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			var msg struct{ Message string }
			_ = json.NewDecoder(resp.Body).Decode(&msg)
			resp.Body.Close()
			if resp.StatusCode != tc.want || msg.Message == "" {
				t.Errorf("%s %s = %d %q, want %d with a message", tc.method, tc.path, resp.StatusCode, msg.Message, tc.want)
			}
			if n := tokens(); n != before {
				t.Errorf("tokens %d → %d: a refused request made one", before, n)
			}
		})
	}
	if got := newBrowser(t, srv).get("/v2/repositories/alice/pub/tags/v1").code; got != http.StatusOK {
		t.Errorf("tag after refused deletes = %d, want 200", got)
	}

	// Scripts send no Origin; this site's own pages send its Origin.
	for _, origin := range []string{"", srv.URL} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v2/access-tokens", strings.NewReader(tokenBody))
		req.SetBasicAuth("alice", userPassword)
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("JSON token request with Origin %q = %d, want 201", origin, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v2/repositories/alice/pub/tags/v1", nil)
	req.SetBasicAuth("alice", userPassword)
	req.Header.Set("Origin", srv.URL)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete from this site = %d, want 204", resp.StatusCode)
	}
}
