package web

import (
	"net/url"
	"strings"
)

// Repository pages live under /r/NAME, and names contain '/', so the
// path is read from the right, like the distribution API's:
//
//	/r/NAME                     overview
//	/r/NAME/tags                tags
//	/r/NAME/tags/TAG            one tag: its platforms, layers, config
//	/r/NAME/manifests/DIGEST    one manifest (a platform of a tag)
//	/r/NAME/settings            settings
//	/r/NAME/history[?tag=TAG]   tag history: the floating tags' evolution and
//	                            every change, or one tag's timeline
//	/r/NAME/_                   overview, for names the forms above shadow
//	/r/NAME/_?tab=tags|settings|history&tag=TAG  the same pages, likewise
//
// "_" is not a valid path component, so "/_" is never part of a name.
// The URL builders below check that a URL reads back as meant and fall
// back to the "_" form otherwise.

type repoView string

const (
	viewOverview repoView = "overview"
	viewTags     repoView = "tags"
	viewTag      repoView = "tag"
	viewManifest repoView = "manifest"
	viewSettings repoView = "settings"
	viewHistory  repoView = "history"
)

type repoRoute struct {
	Name string
	View repoView
	Ref  string // tag or digest
}

// parseRepoPath reads the part of a /r/ path after "/r/", with its query.
func parseRepoPath(path string, q url.Values) repoRoute {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	n := len(seg)
	name := func(k int) string { return strings.Join(seg[:n-k], "/") }
	switch {
	case seg[n-1] == "_" && n >= 2:
		rt := repoRoute{Name: name(1), View: viewOverview}
		switch {
		case q.Get("tab") == "history":
			rt.View, rt.Ref = viewHistory, q.Get("tag")
		case q.Get("tag") != "":
			rt.View, rt.Ref = viewTag, q.Get("tag")
		case q.Get("tab") == "tags":
			rt.View = viewTags
		case q.Get("tab") == "settings":
			rt.View = viewSettings
		}
		return rt
	case n >= 3 && seg[n-2] == "tags":
		return repoRoute{Name: name(2), View: viewTag, Ref: seg[n-1]}
	case n >= 3 && seg[n-2] == "manifests":
		return repoRoute{Name: name(2), View: viewManifest, Ref: seg[n-1]}
	case n >= 2 && seg[n-1] == "tags":
		return repoRoute{Name: name(1), View: viewTags}
	case n >= 2 && seg[n-1] == "settings":
		return repoRoute{Name: name(1), View: viewSettings}
	case n >= 2 && seg[n-1] == "history":
		return repoRoute{Name: name(1), View: viewHistory, Ref: q.Get("tag")}
	}
	return repoRoute{Name: strings.Join(seg, "/"), View: viewOverview}
}

// repoURL returns the URL of a view of repository name.
func repoURL(name string, view repoView, ref string) string {
	var u string
	switch view {
	case viewTags, viewSettings, viewHistory:
		u = "/r/" + name + "/" + string(view)
	case viewTag:
		u = "/r/" + name + "/tags/" + ref
	case viewManifest:
		u = "/r/" + name + "/manifests/" + ref
	default:
		u = "/r/" + name
	}
	want := repoRoute{Name: name, View: view, Ref: ref}
	if view == viewHistory {
		// The tag is in the query, which the read-back below leaves out.
		want.Ref = ""
	}
	if parseRepoPath(strings.TrimPrefix(u, "/r/"), nil) == want {
		if view == viewHistory && ref != "" {
			u += "?tag=" + url.QueryEscape(ref)
		}
		return u
	}
	q := url.Values{}
	switch view {
	case viewHistory:
		q.Set("tab", string(view))
		if ref != "" {
			q.Set("tag", ref)
		}
	case viewTag:
		q.Set("tag", ref)
	case viewTags, viewSettings:
		q.Set("tab", string(view))
	case viewManifest:
		// Digests never look like the words above; reached only for names
		// that end in one, where the digest form still reads back.
		return u
	}
	if len(q) == 0 {
		return "/r/" + name + "/_"
	}
	return "/r/" + name + "/_?" + q.Encode()
}
