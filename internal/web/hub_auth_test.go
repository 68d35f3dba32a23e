package web_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func basic(user, secret string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))}
}

func TestHubAPI_HonoursVisibilityAndRights(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	cases := []struct {
		name   string
		method string
		path   string
		header map[string]string
		want   int
	}{
		{"anonymous reads a public tag", "GET", "/v2/namespaces/alice/repositories/pub/tags/v1", nil, 200},
		{"anonymous cannot see a private one", "GET", "/v2/namespaces/alice/repositories/priv/tags", nil, 404},
		{"anonymous cannot see a private repository", "GET", "/v2/repositories/alice/priv/", nil, 404},
		{"the owner sees it", "GET", "/v2/repositories/alice/priv/tags/", basic("alice", userPassword), 200},
		{"another user does not", "GET", "/v2/repositories/alice/priv/tags/", basic("bob", userPassword), 404},
		{"an org admin sees the org's", "GET", "/v2/namespaces/acme/repositories/secret", basic("carol", userPassword), 200},
		{"wrong password is 401", "GET", "/v2/namespaces/alice/repositories/pub/tags", basic("alice", "wrong-password"), 401},
		{"anonymous delete asks for credentials", "DELETE", "/v2/repositories/alice/pub/tags/v1/", nil, 401},
		{"another user may not delete", "DELETE", "/v2/repositories/alice/pub/tags/v1/", basic("bob", userPassword), 403},
		{"the owner may", "DELETE", "/v2/repositories/alice/pub/tags/v1/", basic("alice", userPassword), 204},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.do(tc.method, tc.path, nil, tc.header).code; got != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}

	var anon, owner struct{ Count int }
	b.getJSON("/v2/namespaces/alice/repositories", nil, &anon)
	b.getJSON("/v2/namespaces/alice/repositories", basic("alice", userPassword), &owner)
	if anon.Count != 1 || owner.Count != 2 {
		t.Errorf("alice's repositories: anonymous sees %d, alice %d; want 1 and 2", anon.Count, owner.Count)
	}
}

func TestHubAPI_LoginTokenAndAccessTokens(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	login := func(body string) (int, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v2/auth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		must(t, err)
		defer r.Body.Close()
		out := map[string]string{}
		_ = json.NewDecoder(r.Body).Decode(&out)
		return r.StatusCode, out
	}
	if code, _ := login(`{"identifier":"alice","secret":"nope-nope"}`); code != http.StatusUnauthorized {
		t.Errorf("wrong secret = %d, want 401", code)
	}
	code, tok := login(`{"identifier":"alice","secret":"` + userPassword + `"}`)
	if code != http.StatusOK || tok["access_token"] == "" {
		t.Fatalf("login = %d %v", code, tok)
	}
	r0, err := http.Post(srv.URL+"/v2/users/login", "application/json", strings.NewReader(`{"username":"alice","password":"`+userPassword+`"}`))
	must(t, err)
	var legacy map[string]string
	must(t, json.NewDecoder(r0.Body).Decode(&legacy))
	r0.Body.Close()
	if r0.StatusCode != http.StatusOK || legacy["token"] == "" {
		t.Errorf("legacy login = %d %v, want {\"token\"}", r0.StatusCode, legacy)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok["access_token"]}
	var tags struct{ Count int }
	if code := b.getJSON("/v2/namespaces/alice/repositories/priv/tags", bearer, &tags); code != http.StatusOK || tags.Count != 1 {
		t.Errorf("private tags with the bearer = %d %+v", code, tags)
	}

	resp := b.do(http.MethodPost, "/v2/access-tokens", nil, map[string]string{
		"Authorization": bearer["Authorization"], "Content-Type": "application/json"})
	if resp.code != http.StatusBadRequest {
		t.Errorf("create token without a body = %d, want 400", resp.code)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v2/access-tokens", strings.NewReader(`{"token_label":"script","scopes":["repo:read"]}`))
	req.Header.Set("Authorization", bearer["Authorization"])
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	must(t, err)
	var created map[string]any
	must(t, json.NewDecoder(r.Body).Decode(&created))
	r.Body.Close()
	if r.StatusCode != http.StatusCreated || !strings.HasPrefix(created["token"].(string), "wharf_pat_") || created["token_label"] != "script" {
		t.Fatalf("create token = %d %v", r.StatusCode, created)
	}
	pat := created["token"].(string)
	var list struct {
		Count   int              `json:"count"`
		Results []map[string]any `json:"results"`
	}
	b.getJSON("/v2/access-tokens", bearer, &list)
	if list.Count != 1 || list.Results[0]["token"] != "" || list.Results[0]["is_active"] != true {
		t.Errorf("token list = %+v (secrets must not be listed)", list)
	}
	// The read-only token reads but cannot delete, nor manage tokens.
	if got := b.get("/v2/access-tokens").code; got != http.StatusUnauthorized {
		t.Errorf("token list anonymously = %d, want 401", got)
	}
	if got := b.do(http.MethodGet, "/v2/access-tokens", nil, basic("alice", pat)).code; got != http.StatusForbidden {
		t.Errorf("token list with an access token = %d, want 403", got)
	}
	if got := b.do(http.MethodDelete, "/v2/repositories/alice/priv/tags/v1/", nil, basic("alice", pat)).code; got != http.StatusForbidden {
		t.Errorf("delete with a read-only token = %d, want 403", got)
	}
	// Logging in with the read-only token gives a bearer that is capped too.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/v2/auth/token", strings.NewReader(`{"identifier":"alice","secret":"`+pat+`"}`))
	req.Header.Set("Content-Type", "application/json")
	r, err = http.DefaultClient.Do(req)
	must(t, err)
	var capped map[string]string
	must(t, json.NewDecoder(r.Body).Decode(&capped))
	r.Body.Close()
	cappedBearer := map[string]string{"Authorization": "Bearer " + capped["access_token"]}
	if got := b.do(http.MethodGet, "/v2/repositories/alice/priv/tags/", nil, cappedBearer).code; got != http.StatusOK {
		t.Errorf("read with a token-derived bearer = %d, want 200", got)
	}
	if got := b.do(http.MethodDelete, "/v2/repositories/alice/priv/tags/v1/", nil, cappedBearer).code; got != http.StatusForbidden {
		t.Errorf("delete with a read-only token's bearer = %d, want 403", got)
	}
	if got := b.do(http.MethodGet, "/v2/access-tokens", nil, cappedBearer).code; got != http.StatusForbidden {
		t.Errorf("token list with a token's bearer = %d, want 403", got)
	}
	if got := b.do(http.MethodDelete, "/v2/access-tokens/"+created["uuid"].(string), nil, bearer).code; got != http.StatusNoContent {
		t.Errorf("revoke = %d, want 204", got)
	}
	if got := b.do(http.MethodGet, "/v2/repositories/alice/priv/tags/", nil, basic("alice", pat)).code; got != http.StatusUnauthorized {
		t.Errorf("revoked token = %d, want 401", got)
	}
	// The bearer bought with it ends with it, not when it expires.
	if got := b.do(http.MethodGet, "/v2/repositories/alice/priv/tags/", nil, cappedBearer).code; got != http.StatusUnauthorized {
		t.Errorf("bearer of a revoked token = %d, want 401", got)
	}
}

func TestHubAPI_CookieNeedsCSRFForChanges(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	b.signIn("alice", userPassword)
	if got := b.do(http.MethodDelete, "/v2/repositories/alice/pub/tags/v1/", nil, nil).code; got != http.StatusForbidden {
		t.Errorf("cookie DELETE without the CSRF header = %d, want 403", got)
	}
	if got := b.do(http.MethodDelete, "/v2/repositories/alice/pub/tags/v1/", nil, map[string]string{"X-CSRF-Token": b.csrf()}).code; got != http.StatusNoContent {
		t.Errorf("cookie DELETE with the CSRF header = %d, want 204", got)
	}
}

func TestHubAPI_DockerBearerTokensAreNotAccounts(t *testing.T) {
	srv := accountsWorld(t)
	// A token from /token (docker's flow) carries repository scopes only.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/token?service=wharf&scope=repository:alice/pub:pull", nil)
	req.SetBasicAuth("alice", userPassword)
	r, err := http.DefaultClient.Do(req)
	must(t, err)
	var tok struct {
		Token string `json:"token"`
	}
	must(t, json.NewDecoder(r.Body).Decode(&tok))
	r.Body.Close()
	if tok.Token == "" {
		t.Fatalf("no token from /token (%d)", r.StatusCode)
	}
	b := newBrowser(t, srv)
	if got := b.do(http.MethodGet, "/v2/repositories/alice/priv/tags/", nil, map[string]string{"Authorization": "Bearer " + tok.Token}).code; got != http.StatusUnauthorized {
		t.Errorf("a registry token on the Hub API = %d, want 401", got)
	}
}
