package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestHubAPI_TagFieldsAreHubs(t *testing.T) {
	srv := registrytest.NewServer(t)
	pushIndex(t, srv, "alice/app:multi")
	b := newBrowser(t, srv)
	for _, path := range []string{"/v2/namespaces/alice/repositories/app/tags/multi", "/v2/repositories/alice/app/tags/multi/"} {
		var tag map[string]any
		if code := b.getJSON(path, nil, &tag); code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, code)
		}
		want := []string{"content_type", "digest", "full_size", "images", "last_updated", "last_updater_username",
			"media_type", "name", "tag_last_pulled", "tag_last_pushed", "tag_status", "v2"}
		if got := keysOf(tag); !slices.Equal(got, want) {
			t.Errorf("%s fields = %q, want %q", path, got, want)
		}
		if tag["name"] != "multi" || tag["tag_status"] != "active" || tag["tag_last_pulled"] != nil ||
			tag["media_type"] != "application/vnd.oci.image.index.v1+json" || !strings.HasPrefix(tag["digest"].(string), "sha256:") {
			t.Errorf("tag = %v", tag)
		}
		images := tag["images"].([]any)
		if len(images) != 2 {
			t.Fatalf("images = %v, want two platforms", images)
		}
		img := images[1].(map[string]any)
		wantImg := []string{"architecture", "digest", "last_pulled", "last_pushed", "os", "size", "status", "variant"}
		if got := keysOf(img); !slices.Equal(got, wantImg) {
			t.Errorf("image fields = %q, want %q", got, wantImg)
		}
		if img["architecture"] != "arm64" || img["os"] != "linux" || img["variant"] != "v8" || img["size"].(float64) <= 0 {
			t.Errorf("image = %v", img)
		}
		if images[0].(map[string]any)["variant"] != nil {
			t.Errorf("amd64 variant = %v, want null as on Hub", images[0].(map[string]any)["variant"])
		}
		if tag["full_size"].(float64) != img["size"].(float64)+images[0].(map[string]any)["size"].(float64) {
			t.Errorf("full_size %v is not the sum of the images' sizes", tag["full_size"])
		}
	}
	resp := b.do(http.MethodHead, "/v2/namespaces/alice/repositories/app/tags/multi", nil, nil)
	if resp.code != http.StatusOK || resp.body != "" {
		t.Errorf("HEAD tag = %d %q", resp.code, resp.body)
	}
	if resp := b.do(http.MethodHead, "/v2/namespaces/alice/repositories/app/tags/nope", nil, nil); resp.code != http.StatusNotFound {
		t.Errorf("HEAD missing tag = %d, want 404", resp.code)
	}
}

type tagPage struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []struct {
		Name string `json:"name"`
	} `json:"results"`
}

func TestHubAPI_TagsPaginate(t *testing.T) {
	srv := registrytest.NewServer(t)
	img := testImage(t, "amd64")
	for i := range 12 {
		push(t, srv, fmt.Sprintf("alice/app:t%02d", i), img)
	}
	b := newBrowser(t, srv)
	var page tagPage
	if code := b.getJSON("/v2/repositories/alice/app/tags/?ordering=last_updated", nil, &page); code != http.StatusOK {
		t.Fatalf("tags = %d", code)
	}
	if page.Count != 12 || len(page.Results) != 10 || page.Previous != nil || page.Next == nil || page.Results[0].Name != "t11" {
		t.Fatalf("page 1 = %+v, want 10 of 12, newest (t11) first", page)
	}
	wantNext := srv.URL + "/v2/repositories/alice/app/tags/?ordering=last_updated&page=2&page_size=10"
	if *page.Next != wantNext {
		t.Errorf("next = %s, want %s", *page.Next, wantNext)
	}
	var second tagPage
	b.getJSON(strings.TrimPrefix(*page.Next, srv.URL), nil, &second)
	if len(second.Results) != 2 || second.Next != nil || second.Previous == nil || second.Results[1].Name != "t00" {
		t.Errorf("page 2 = %+v", second)
	}
	var filtered tagPage
	b.getJSON("/v2/namespaces/alice/repositories/app/tags?name=t1&page_size=1&ordering=name", nil, &filtered)
	if filtered.Count != 2 || len(filtered.Results) != 1 || filtered.Results[0].Name != "t10" {
		t.Errorf("name=t1&page_size=1 = %+v, want t10 of 2", filtered)
	}
	var big tagPage
	b.getJSON("/v2/namespaces/alice/repositories/app/tags?page_size=1000", nil, &big)
	if len(big.Results) != 12 {
		t.Errorf("page_size=1000 gave %d results, want all 12 (capped at 100)", len(big.Results))
	}
	for path, want := range map[string]int{
		"/v2/namespaces/alice/repositories/app/tags?page=3": http.StatusNotFound,
		"/v2/namespaces/alice/repositories/app/tags?page=0": http.StatusBadRequest,
		"/v2/namespaces/alice/repositories/nope/tags":       http.StatusNotFound,
	} {
		if got := b.get(path).code; got != want {
			t.Errorf("GET %s = %d, want %d", path, got, want)
		}
	}
}

func TestHubAPI_Repositories(t *testing.T) {
	srv := registrytest.NewServer(t)
	push(t, srv, "alice/one:v1", testImage(t, "amd64"))
	push(t, srv, "alice/two:v1", testImage(t, "amd64"))
	push(t, srv, "bob/three:v1", testImage(t, "amd64"))
	b := newBrowser(t, srv)
	var page struct {
		Count   int              `json:"count"`
		Results []map[string]any `json:"results"`
	}
	if code := b.getJSON("/v2/repositories/alice/?ordering=name", nil, &page); code != http.StatusOK {
		t.Fatalf("list = %d", code)
	}
	if page.Count != 2 || page.Results[0]["name"] != "one" || page.Results[0]["namespace"] != "alice" {
		t.Fatalf("alice's repositories = %+v", page)
	}
	want := []string{"date_registered", "description", "is_private", "last_updated", "name", "namespace",
		"pull_count", "repository_type", "star_count", "status", "storage_size"}
	if got := keysOf(page.Results[0]); !slices.Equal(got, want) {
		t.Errorf("repository fields = %q, want %q", got, want)
	}
	if page.Results[0]["storage_size"].(float64) <= 0 || page.Results[0]["is_private"] != false {
		t.Errorf("repository = %v", page.Results[0])
	}
	var repo map[string]any
	if code := b.getJSON("/v2/namespaces/alice/repositories/two", nil, &repo); code != http.StatusOK || repo["name"] != "two" {
		t.Errorf("one repository = %d %v", code, repo)
	}
	if _, ok := repo["full_description"]; !ok {
		t.Error("a single repository lacks full_description")
	}

	if resp := b.do(http.MethodDelete, "/v2/repositories/alice/one/tags/v1/", nil, nil); resp.code != http.StatusNoContent {
		t.Errorf("DELETE tag = %d %s", resp.code, resp.body)
	}
	if got := b.get("/v2/repositories/alice/one/tags/v1/").code; got != http.StatusNotFound {
		t.Errorf("deleted tag = %d, want 404", got)
	}
	if resp := b.do(http.MethodDelete, "/v2/repositories/alice/two/", nil, nil); resp.code != http.StatusAccepted {
		t.Errorf("DELETE repository = %d %s", resp.code, resp.body)
	}
	if got := b.get("/v2/namespaces/alice/repositories/two").code; got != http.StatusNotFound {
		t.Errorf("deleted repository = %d, want 404", got)
	}
	resp := b.get("/v2/namespaces/alice/unknown")
	if resp.code != http.StatusNotFound || !json.Valid([]byte(resp.body)) {
		t.Errorf("unknown API path = %d %q, want a JSON 404", resp.code, resp.body)
	}
}

// The Hub-style routes share /v2/ with the registry: a repository named
// like them must still work through the distribution API.
func TestHubAPI_DoesNotShadowRegistryRoutes(t *testing.T) {
	srv := registrytest.NewServer(t)
	for _, repo := range []string{"repositories/x/tags", "namespaces/a/b", "repositories/alice"} {
		push(t, srv, repo+":list", testImage(t, "amd64"))
		b := newBrowser(t, srv)
		var list struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if code := b.getJSON("/v2/"+repo+"/tags/list", nil, &list); code != http.StatusOK || list.Name != repo || !slices.Equal(list.Tags, []string{"list"}) {
			t.Errorf("GET /v2/%s/tags/list = %d %+v, want the registry's tag list", repo, code, list)
		}
		resp := b.do(http.MethodHead, "/v2/"+repo+"/manifests/list", nil, map[string]string{"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
		if resp.code != http.StatusOK || resp.header.Get("Docker-Content-Digest") == "" {
			t.Errorf("HEAD /v2/%s/manifests/list = %d, want the registry's manifest", repo, resp.code)
		}
	}
	// And the Hub route still answers for its own shapes.
	push(t, srv, "alice/app:v1", testImage(t, "amd64"))
	var tag map[string]any
	if code := newBrowser(t, srv).getJSON("/v2/repositories/alice/app/tags/v1/", nil, &tag); code != http.StatusOK || tag["name"] != "v1" {
		t.Errorf("Hub tag = %d %v", code, tag)
	}
}
