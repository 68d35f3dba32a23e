package web

import (
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/registry"
)

// historyView is the history page of a repository (every tag's changes
// and the floating tags' evolution) or of one tag (its timeline).
type historyView struct {
	Repo *repoHeader
	// Tag is the tag whose timeline this is, "" for the whole repository.
	Tag       string
	TagURL    string
	Changes   []historyRow
	Pager     pager
	Evolution *registry.FloatingEvolution
}

// historyRow is one change with the links the page shows.
type historyRow struct {
	registry.TagChange
	FromURL, ToURL, TagHistoryURL string
	// CanRestore: the viewer may push, and From names a manifest the tag
	// can go back to.
	CanRestore bool
}

func (h *Handler) historyPage(w http.ResponseWriter, r *http.Request, c caller, hd *repoHeader, tag string) {
	ctx := r.Context()
	name := hd.Info.Name
	page := pageParam(r)
	changes, total, err := h.reg.TagHistory(ctx, name, tag, (page-1)*pageSize, pageSize)
	if err != nil {
		h.domainError(w, r, c, err)
		return
	}
	data := historyView{Repo: hd, Tag: tag, Pager: newPager(r.URL, page, pageSize, total)}
	link := func(d digest.Digest) string {
		if d == "" {
			return ""
		}
		return repoURL(name, viewManifest, d.String())
	}
	for _, ch := range changes {
		data.Changes = append(data.Changes, historyRow{TagChange: ch, FromURL: link(ch.From), ToURL: link(ch.To),
			TagHistoryURL: repoURL(name, viewHistory, ch.Tag), CanRestore: hd.CanPush && ch.From != ""})
	}
	title := name + " history"
	if tag != "" {
		data.TagURL = repoURL(name, viewTag, tag)
		title = name + ":" + tag + " history"
	} else if page == 1 {
		if data.Evolution, err = h.reg.FloatingEvolution(ctx, name); err != nil {
			h.domainError(w, r, c, err)
			return
		}
	}
	h.show(w, r, c, http.StatusOK, "history", title, data)
}

// withFlash adds the flash message key to a page URL.
func withFlash(u, flash string) string {
	if strings.Contains(u, "?") {
		return u + "&flash=" + flash
	}
	return u + "?flash=" + flash
}
