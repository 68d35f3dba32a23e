package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

type v1Results struct {
	Query      string `json:"query"`
	NumResults int    `json:"num_results"`
	NumPages   int    `json:"num_pages"`
	Page       int    `json:"page"`
	PageSize   int    `json:"page_size"`
	Results    []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		StarCount   int    `json:"star_count"`
		IsOfficial  bool   `json:"is_official"`
		IsAutomated bool   `json:"is_automated"`
	} `json:"results"`
}

func (r v1Results) names() []string {
	out := []string{}
	for _, x := range r.Results {
		out = append(out, x.Name)
	}
	return out
}

// searchToken is the bearer token dockerd fetches for a search when the
// account logged in with an identity token.
func searchToken(t *testing.T, srv *registrytest.Server, user string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/token?service="+url.QueryEscape(srv.Config.Auth.Service)+"&scope=registry:catalog:search", nil)
	req.SetBasicAuth(user, userPassword)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&tok))
	if resp.StatusCode != http.StatusOK || tok.Token == "" {
		t.Fatalf("token for %s = %d", user, resp.StatusCode)
	}
	return tok.Token
}

func TestV1Search_ListsWhatTheCallerMayPull(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	bearer := map[string]string{"Authorization": "Bearer " + searchToken(t, srv, "carol")}
	cases := []struct {
		name   string
		header map[string]string
		want   []string
	}{
		{"anonymous sees the public one", nil, []string{"alice/pub"}},
		{"another user too", basic("bob", userPassword), []string{"alice/pub"}},
		{"the owner with Basic sees the private one", basic("alice", userPassword), []string{"alice/priv", "alice/pub"}},
		{"an org admin with a search token sees the org's", bearer, []string{"acme/secret", "alice/pub"}},
		{"the registry admin sees everything", basic("admin", adminPassword), []string{"acme/secret", "alice/priv", "alice/pub"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got v1Results
			if code := b.getJSON("/v1/search?q=&n=25", tc.header, &got); code != http.StatusOK {
				t.Fatalf("status = %d", code)
			}
			if !slices.Equal(got.names(), tc.want) || got.NumResults != len(tc.want) || got.PageSize != 25 || got.Page != 1 || got.NumPages != 1 {
				t.Errorf("search = %+v, want %q on one page of 25", got, tc.want)
			}
		})
	}
}

func TestV1Search_RefusesBadInput(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	cases := []struct {
		name, path string
		header     map[string]string
		wantCode   int
		wantErr    string
	}{
		{"n zero", "/v1/search?q=a&n=0", nil, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID"},
		{"n over 100", "/v1/search?q=a&n=101", nil, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID"},
		{"page not a number", "/v1/search?q=a&page=x", nil, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID"},
		{"wrong password", "/v1/search?q=a", basic("alice", "wrong-password"), http.StatusUnauthorized, "UNAUTHORIZED"},
		{"forged token", "/v1/search?q=a", map[string]string{"Authorization": "Bearer not.a.token"}, http.StatusUnauthorized, "UNAUTHORIZED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body struct {
				Errors []struct{ Code, Message string }
			}
			resp := b.do(http.MethodGet, tc.path, nil, tc.header)
			must(t, json.Unmarshal([]byte(resp.body), &body))
			if resp.code != tc.wantCode || len(body.Errors) != 1 || body.Errors[0].Code != tc.wantErr {
				t.Errorf("GET %s = %d %+v, want %d %s", tc.path, resp.code, body, tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestV1Ping_AnswersStandalone(t *testing.T) {
	srv := registrytest.NewServer(t)
	resp, err := http.Get(srv.URL + "/v1/_ping")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Docker-Registry-Standalone") != "true" {
		t.Errorf("ping = %d %v, want 200 with X-Docker-Registry-Standalone: true", resp.StatusCode, resp.Header)
	}
}

var cardTitle = regexp.MustCompile(`class="title" href="[^"]*">([^<]+)</a>`)

func TestSearch_UIAndDockerSearchRankAlike(t *testing.T) {
	srv := registrytest.NewServer(t)
	for _, r := range []string{"a/mygallery", "b/gallery-tools", "gallery", "z/gallery", "c/other"} {
		push(t, srv, r+":v1", testImage(t, "amd64"))
	}
	b := newBrowser(t, srv)
	want := []string{"gallery", "z/gallery", "b/gallery-tools", "a/mygallery"}
	var v1 v1Results
	if code := b.getJSON("/v1/search?q=gallery", nil, &v1); code != http.StatusOK || !slices.Equal(v1.names(), want) {
		t.Errorf("v1 search = %d %q, want %q", code, v1.names(), want)
	}
	page := b.get("/search?q=gallery")
	ui := []string{}
	for _, m := range cardTitle.FindAllStringSubmatch(page.body, -1) {
		ui = append(ui, m[1])
	}
	if !slices.Equal(ui, want) {
		t.Errorf("UI search = %q, want %q (the same ranking)", ui, want)
	}
}
