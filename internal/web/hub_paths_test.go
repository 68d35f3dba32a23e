package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

// hubCall sends one Hub API request with alice's Basic credentials and a
// JSON body when body is not empty.
func hubCall(t *testing.T, srv *registrytest.Server, method, path, body string) response {
	t.Helper()
	var r *http.Request
	if body == "" {
		r, _ = http.NewRequest(method, srv.URL+path, nil)
	} else {
		r, _ = http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	r.SetBasicAuth("alice", userPassword)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(r)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return response{resp.StatusCode, string(b), resp.Header}
}

// TestHubAPI_EveryRouteAnswersWithAndWithoutTrailingSlash: Docker Hub
// answers its API paths with and without a trailing slash, with JSON; the
// scripts people copy (curl …/tags?page_size=100 | jq) follow no redirect.
func TestHubAPI_EveryRouteAnswersWithAndWithoutTrailingSlash(t *testing.T) {
	srv := accountsWorld(t)
	for _, ref := range []string{"alice/pub:a", "alice/pub:b", "alice/pub:c", "alice/pub:d",
		"alice/gone1:v1", "alice/gone2:v1", "alice/gone3:v1", "alice/gone4:v1"} {
		push(t, srv, ref, testImage(t, "amd64"), remoteOpts("alice", userPassword)...)
	}
	tokenID := func(label string) string {
		t.Helper()
		resp := hubCall(t, srv, http.MethodPost, "/v2/access-tokens", `{"token_label":"`+label+`","scopes":["repo:read"]}`)
		var created struct{ UUID string }
		if resp.code != http.StatusCreated || json.Unmarshal([]byte(resp.body), &created) != nil {
			t.Fatalf("create token: %d %s", resp.code, resp.body)
		}
		return created.UUID
	}
	tok1, tok2 := tokenID("one"), tokenID("two")

	// The field each login answers with, whichever form of the path.
	loginKey := map[string]string{"/v2/auth/token": "access_token", "/v2/users/login": "token"}
	// Each route once without and once with the slash; a change acts on
	// its own object each time.
	for _, tc := range []struct {
		method          string
		bare, slashed   string
		body            string
		want            int
		sameBodyForBoth bool
	}{
		{"GET", "/v2/namespaces/alice/repositories", "", "", 200, true},
		{"GET", "/v2/namespaces/alice/repositories/pub", "", "", 200, true},
		{"GET", "/v2/namespaces/alice/repositories/pub/tags", "", "", 200, true},
		{"GET", "/v2/namespaces/alice/repositories/pub/tags/v1", "", "", 200, true},
		{"GET", "/v2/repositories/alice", "", "", 200, true},
		{"GET", "/v2/repositories/alice/pub", "", "", 200, true},
		{"GET", "/v2/repositories/alice/pub/tags", "", "", 200, true},
		{"GET", "/v2/repositories/alice/pub/tags/v1", "", "", 200, true},
		{"DELETE", "/v2/namespaces/alice/repositories/pub/tags/a", "/v2/namespaces/alice/repositories/pub/tags/b", "", 204, false},
		{"DELETE", "/v2/repositories/alice/pub/tags/c", "/v2/repositories/alice/pub/tags/d", "", 204, false},
		{"DELETE", "/v2/namespaces/alice/repositories/gone1", "/v2/namespaces/alice/repositories/gone2", "", 202, false},
		{"DELETE", "/v2/repositories/alice/gone3", "/v2/repositories/alice/gone4", "", 202, false},
		{"POST", "/v2/auth/token", "", `{"identifier":"alice","secret":"` + userPassword + `"}`, 200, false},
		{"POST", "/v2/users/login", "", `{"username":"alice","password":"` + userPassword + `"}`, 200, false},
		{"GET", "/v2/access-tokens", "", "", 200, true},
		{"GET", "/v2/access-tokens/" + tok1, "", "", 200, true},
		{"POST", "/v2/access-tokens", "", `{"token_label":"more","scopes":["repo:read"]}`, 201, false},
		{"DELETE", "/v2/access-tokens/" + tok1, "/v2/access-tokens/" + tok2, "", 204, false},
	} {
		slashed := tc.slashed
		if slashed == "" {
			slashed = tc.bare
		}
		slashed += "/"
		var bodies []string
		for _, path := range []string{tc.bare, slashed} {
			resp := hubCall(t, srv, tc.method, path, tc.body)
			if resp.code != tc.want {
				t.Errorf("%s %s = %d (Location %q) %s, want %d", tc.method, path, resp.code, resp.header.Get("Location"), resp.body, tc.want)
				continue
			}
			if resp.code != http.StatusNoContent && resp.code != http.StatusAccepted && !json.Valid([]byte(resp.body)) {
				t.Errorf("%s %s: body is not JSON: %q", tc.method, path, resp.body)
			}
			if key := loginKey[tc.bare]; key != "" {
				var fields map[string]any
				if json.Unmarshal([]byte(resp.body), &fields) != nil || fields[key] == nil {
					t.Errorf("%s %s = %s, want a %q field", tc.method, path, resp.body, key)
				}
			}
			bodies = append(bodies, resp.body)
		}
		if tc.sameBodyForBoth && len(bodies) == 2 && bodies[0] != bodies[1] {
			t.Errorf("%s %s: the two forms answer differently:\n%s\n%s", tc.method, tc.bare, bodies[0], bodies[1])
		}
	}
}

// TestHubAPI_PageLinksAreHubs: next and previous are absolute URLs of the
// path as asked (slash or not), with page and page_size, or null.
func TestHubAPI_PageLinksAreHubs(t *testing.T) {
	srv := registrytest.NewServer(t)
	for _, ref := range []string{"alice/app:a", "alice/app:b", "alice/app:c", "alice/other:v1"} {
		push(t, srv, ref, testImage(t, "amd64"))
	}
	b := newBrowser(t, srv)
	for _, path := range []string{
		"/v2/repositories/alice/app/tags", "/v2/repositories/alice/app/tags/",
		"/v2/namespaces/alice/repositories/app/tags", "/v2/namespaces/alice/repositories/app/tags/",
	} {
		var first, middle, last tagPage
		if code := b.getJSON(path+"?page_size=1", nil, &first); code != http.StatusOK {
			t.Fatalf("GET %s?page_size=1 = %d", path, code)
		}
		if first.Previous != nil || first.Next == nil || *first.Next != srv.URL+path+"?page=2&page_size=1" {
			t.Errorf("%s page 1: previous %v, next %v; want null and %s?page=2&page_size=1", path, first.Previous, first.Next, srv.URL+path)
			continue
		}
		b.getJSON(strings.TrimPrefix(*first.Next, srv.URL), nil, &middle)
		if middle.Previous == nil || *middle.Previous != srv.URL+path+"?page=1&page_size=1" ||
			middle.Next == nil || *middle.Next != srv.URL+path+"?page=3&page_size=1" {
			t.Errorf("%s page 2: previous %v, next %v", path, middle.Previous, middle.Next)
		}
		b.getJSON(path+"?page=3&page_size=1", nil, &last)
		if last.Next != nil || last.Previous == nil || len(last.Results) != 1 || last.Count != 3 {
			t.Errorf("%s page 3 = %+v, want the last of 3 and next null", path, last)
		}
	}
	for _, path := range []string{"/v2/repositories/alice", "/v2/repositories/alice/", "/v2/namespaces/alice/repositories", "/v2/namespaces/alice/repositories/"} {
		var page tagPage
		if code := b.getJSON(path+"?page_size=1", nil, &page); code != http.StatusOK || page.Count != 2 ||
			page.Next == nil || *page.Next != srv.URL+path+"?page=2&page_size=1" || page.Previous != nil {
			t.Errorf("GET %s?page_size=1 = %d %+v", path, code, page)
		}
	}
	// The raw JSON has null links, as Hub's does, not missing keys.
	resp := b.get("/v2/repositories/alice/app/tags?page_size=100")
	if resp.code != http.StatusOK || !strings.Contains(resp.body, `"next":null`) || !strings.Contains(resp.body, `"previous":null`) {
		t.Errorf("one page = %d %s, want next and previous null", resp.code, resp.body)
	}
}
