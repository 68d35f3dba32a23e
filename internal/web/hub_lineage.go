package web

import (
	"net/http"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// hubBase is a tag's base image in the JSON API.
type hubBase struct {
	Name     string    `json:"name"`
	Digest   string    `json:"digest"`
	Tag      string    `json:"tag"`
	Tags     []string  `json:"tags"`
	Version  string    `json:"version"`
	Source   string    `json:"source"`
	Outdated bool      `json:"outdated"`
	Newer    *hubNewer `json:"newer"`
	Reason   string    `json:"reason"`
	Note     string    `json:"note,omitempty"`
}

// hubNewer is what an outdated base's tag points at now.
type hubNewer struct {
	Tag        string  `json:"tag"`
	Digest     string  `json:"digest"`
	LastPushed *string `json:"last_pushed"`
}

// hubTagRef names a tag built on a base.
type hubTagRef struct {
	Namespace  string  `json:"namespace"`
	Repository string  `json:"repository"`
	Name       string  `json:"name"`
	Tag        string  `json:"tag"`
	Digest     string  `json:"digest"`
	LastPushed *string `json:"last_pushed"`
	Base       hubBase `json:"base"`
}

func hubBaseOf(b *registry.BaseInfo) hubBase {
	out := hubBase{Name: b.Name, Digest: b.Digest.String(), Tag: b.Tag, Tags: b.Tags, Version: b.Version, Source: b.Source,
		Outdated: b.Outdated, Reason: b.Reason, Note: b.Note}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if b.Newer != nil {
		out.Newer = &hubNewer{Tag: b.Newer.Tag, Digest: b.Newer.Digest.String(), LastPushed: hubTime(b.Newer.PushedAt)}
	}
	return out
}

// apiTagBase is GET …/tags/{tag}/base: the image the tag was built on and
// whether it has moved on. A base the caller may not pull is not named:
// 404, as when none is known.
func (h *Handler) apiTagBase(w http.ResponseWriter, r *http.Request) {
	c, name, ok := h.apiRepo(w, r, auth.ActionPull)
	if !ok {
		return
	}
	b, err := h.reg.ImageBase(r.Context(), name, r.PathValue("tag"))
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if b.Name != "" {
		if ok, err := h.can(r.Context(), c, b.Name, auth.ActionPull); err != nil {
			h.apiInternal(w, r, err)
			return
		} else if !ok {
			b = &registry.BaseInfo{}
		}
	}
	if b.Name == "" {
		writeAPIError(w, http.StatusNotFound, "no base image known for this tag")
		return
	}
	writeJSON(w, http.StatusOK, hubBaseOf(b))
}

// apiDerived is GET …/derived[?tag=]: the tags built on the repository
// (on what its tag points at, with ?tag=), by repository and tag, each
// with the base version it uses. Only repositories the caller may pull
// are listed.
func (h *Handler) apiDerived(w http.ResponseWriter, r *http.Request) {
	c, name, ok := h.apiRepo(w, r, auth.ActionPull)
	if !ok {
		return
	}
	page, size, ok := hubPaging(w, r)
	if !ok {
		return
	}
	vis, err := h.visibleTo(r.Context(), c)
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	rows, total, err := h.reg.DerivedImages(r.Context(), name, registry.DerivedQuery{
		Tag: r.URL.Query().Get("tag"), Visible: vis, Offset: (page - 1) * size, Limit: size,
	})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if pageGone(w, page, len(rows)) {
		return
	}
	results := make([]hubTagRef, 0, len(rows))
	for i := range rows {
		d := &rows[i]
		ns := auth.Namespace(d.Repo)
		results = append(results, hubTagRef{Namespace: ns, Repository: d.Repo, Name: d.Repo[len(ns)+min(len(ns), 1):],
			Tag: d.Tag, Digest: d.Digest.String(), LastPushed: hubTime(d.PushedAt), Base: hubBaseOf(&d.Base)})
	}
	writeJSON(w, http.StatusOK, envelope(r, page, size, total, results))
}
