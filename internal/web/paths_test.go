package web

import (
	"net/url"
	"strings"
	"testing"
)

func TestRepoURL_ReadsBackAsMeant(t *testing.T) {
	names := []string{"alice/app", "a/tags", "a/settings", "a/manifests", "a/tags/x", "a/b/tags/tags", "top", "_x/y", "a/history", "a/history/tags"}
	views := []struct {
		view repoView
		ref  string
	}{{viewOverview, ""}, {viewTags, ""}, {viewSettings, ""}, {viewTag, "v1"}, {viewTag, "tags"}, {viewManifest, "sha256:" + strings.Repeat("a", 64)},
		{viewHistory, ""}, {viewHistory, "latest"}, {viewHistory, "history"}}
	for _, name := range names {
		for _, v := range views {
			u, err := url.Parse(repoURL(name, v.view, v.ref))
			if err != nil {
				t.Fatal(err)
			}
			got := parseRepoPath(strings.TrimPrefix(u.Path, "/r/"), u.Query())
			if want := (repoRoute{Name: name, View: v.view, Ref: v.ref}); got != want {
				t.Errorf("repoURL(%q, %s, %q) = %s, reads back as %+v", name, v.view, v.ref, u, got)
			}
		}
	}
}

func TestIsHubAPIPath(t *testing.T) {
	for path, want := range map[string]bool{
		"/v2/namespaces/a/repositories": true, "/v2/repositories/a/": true, "/v2/auth/token": true,
		"/v2/access-tokens": true, "/v2/access-tokens/x": true, "/v2/users/login": true,
		"/v2/auth/token/": true, "/v2/users/login/": true, "/v2/repositories/a": true,
		"/v2/": false, "/v2/_catalog": false, "/v2/alice/app/tags/list": false, "/v2/auth/tokens": false,
	} {
		if got := IsHubAPIPath(path); got != want {
			t.Errorf("IsHubAPIPath(%q) = %v, want %v", path, got, want)
		}
	}
}
