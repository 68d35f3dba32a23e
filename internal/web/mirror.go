package web

import (
	"net/http"

	"github.com/wharf/wharf/internal/proxy"
	"github.com/wharf/wharf/internal/registry"
)

// mirrorUpstream is one upstream on the mirror page.
type mirrorUpstream struct {
	proxy.Stats
	// Repos are the cached repositories the viewer may see, under the
	// upstream's prefix and namespaces (a page of each).
	Repos []registry.RepositoryInfo
}

// mirrorData is the mirror page: the upstreams, and the storage the
// mirrored namespaces hold against the size cap (MaxSize 0: none).
type mirrorData struct {
	Upstreams      []mirrorUpstream
	Usage, MaxSize int64
}

// mirrorPage is /mirror: what the pull-through cache mirrors, how often
// it answered from the cache, and the bytes that did not cross again.
func (h *Handler) mirrorPage(w http.ResponseWriter, r *http.Request) {
	c, err := h.identify(r)
	if err != nil {
		h.showError(w, r, caller{}, http.StatusUnauthorized, "Your credentials were not accepted.")
		return
	}
	if h.mirror == nil {
		h.showError(w, r, c, http.StatusNotFound, "This registry mirrors no other registry.")
		return
	}
	vis, err := h.visibleTo(r.Context(), c)
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	var out []mirrorUpstream
	for _, st := range h.mirror.Stats() {
		u := mirrorUpstream{Stats: st}
		for _, ns := range append([]string{st.Prefix}, st.Namespaces...) {
			if ns == "" {
				continue
			}
			repos, _, err := h.reg.ListRepositoryInfo(r.Context(), registry.RepositoryQuery{
				Namespace: ns, Visible: vis, Sort: registry.SortByName, Limit: pageSize})
			if err != nil {
				h.internal(w, r, c, err)
				return
			}
			u.Repos = append(u.Repos, repos...)
		}
		out = append(out, u)
	}
	usage, err := h.mirror.Usage(r.Context())
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	h.show(w, r, c, http.StatusOK, "mirror", "Mirror", mirrorData{Upstreams: out, Usage: usage, MaxSize: h.mirror.MaxSize()})
}
