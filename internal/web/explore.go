package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// pageSize is how many rows a UI page shows.
const pageSize = 25

// pager is the pagination of a listing page.
type pager struct {
	Page, Pages, Total int
	Prev, Next         string // URLs, "" at the ends
}

func newPager(u *url.URL, page, size, total int) pager {
	p := pager{Page: page, Total: total, Pages: max(1, (total+size-1)/size)}
	if page > 1 {
		p.Prev = withQuery(u, "page", strconv.Itoa(page-1))
	}
	if page < p.Pages {
		p.Next = withQuery(u, "page", strconv.Itoa(page+1))
	}
	return p
}

// pageParam reads ?page= (1-based), defaulting to 1.
func pageParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

type repoList struct {
	Query     string
	Sort      string
	Namespace string
	Repos     []registry.RepositoryInfo
	Pager     pager
	// Empty is true when the registry holds nothing the viewer may see
	// at all: the page shows how to push a first image.
	Empty bool
	// Private names the private repositories of the page, for badges.
	Private map[string]bool
	// Members lists an organisation's members, for its admins, who may
	// ManageMembers.
	Members       []auth.Member
	ManageMembers bool
	// Policies are the namespace's, for its members.
	Policies *policyPanel
	// Webhooks are the namespace's, for those who may change it.
	Webhooks *webhookPanel
	// Replication is the namespace's rules, for those who may change it.
	Replication *replicationPanel
	// Usage is the namespace's storage and quota, for its members.
	Usage *registry.Usage
	// Outdated lists Images, the tags whose base moved on, instead of
	// repositories (explore's ?outdated=1).
	Outdated bool
	Images   []registry.DerivedImage
}

// explore is "/" (and /search): the repositories the viewer may see.
func (h *Handler) explore(w http.ResponseWriter, r *http.Request) {
	h.listRepos(w, r, "", "explore", "Explore")
}

// namespacePage is /u/NAME: one user's or organisation's repositories.
func (h *Handler) namespacePage(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("name")
	if !h.open() && !auth.ValidName(ns) {
		c, _ := h.identify(r)
		h.showError(w, r, c, http.StatusNotFound, "No such user or organisation.")
		return
	}
	h.listRepos(w, r, ns, "namespace", ns)
}

func (h *Handler) listRepos(w http.ResponseWriter, r *http.Request, ns, pageName, title string) {
	c, err := h.identify(r)
	if err != nil {
		h.showError(w, r, caller{}, http.StatusUnauthorized, "Your credentials were not accepted.")
		return
	}
	ctx := r.Context()
	vis, err := h.visibleTo(ctx, c)
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	q := r.URL.Query()
	sort := registry.SortByLastPushed
	switch {
	case q.Get("sort") == registry.SortByName:
		sort = registry.SortByName
	case q.Get("q") != "" && (q.Get("sort") == "" || q.Get("sort") == registry.SortByRelevance):
		// A search lists the best matches first, as docker search does.
		sort = registry.SortByRelevance
	}
	page := pageParam(r)
	data := repoList{Query: q.Get("q"), Sort: sort, Namespace: ns, Outdated: q.Get("outdated") != ""}
	if data.Outdated && ns == "" {
		imgs, total, err := h.reg.OutdatedImages(ctx, vis, (page-1)*pageSize, pageSize)
		if err != nil {
			h.internal(w, r, c, err)
			return
		}
		data.Images, data.Pager = imgs, newPager(r.URL, page, pageSize, total)
		h.show(w, r, c, http.StatusOK, "outdated", "Images with outdated bases", data)
		return
	}
	rq := registry.RepositoryQuery{
		Namespace: ns, Search: data.Query, Visible: vis, Sort: sort,
		Offset: (page - 1) * pageSize, Limit: pageSize,
	}
	list := h.reg.ListRepositoryInfo
	if sort == registry.SortByRelevance {
		list = h.reg.SearchRepositories
	}
	repos, total, err := list(ctx, rq)
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	data.Repos, data.Pager = repos, newPager(r.URL, page, pageSize, total)
	if data.Private, err = h.privateOf(r, repos); err != nil {
		h.internal(w, r, c, err)
		return
	}
	if total == 0 && data.Query == "" && page == 1 {
		data.Empty = true
	}
	if ns != "" && !h.open() {
		if data.Members, data.ManageMembers, err = h.orgMembers(r, c, ns); err != nil {
			h.internal(w, r, c, err)
			return
		}
	}
	if ns != "" {
		if data.Policies, err = h.namespacePolicies(ctx, c, ns); err != nil {
			h.internal(w, r, c, err)
			return
		}
		if data.Webhooks, err = h.namespaceWebhooks(ctx, c, ns); err != nil {
			h.internal(w, r, c, err)
			return
		}
		if data.Replication, err = h.namespaceReplication(ctx, c, ns); err != nil {
			h.internal(w, r, c, err)
			return
		}
		if data.Policies != nil {
			usage, err := h.reg.NamespaceUsage(ctx, ns)
			if err != nil {
				h.internal(w, r, c, err)
				return
			}
			data.Usage = &usage
		}
	}
	h.show(w, r, c, http.StatusOK, pageName, title, data)
}

// namespacePolicies is the policies panel of ns for its members (nil for
// others), editable by its owners.
func (h *Handler) namespacePolicies(ctx context.Context, c caller, ns string) (*policyPanel, error) {
	pattern := ns + "/*"
	if registry.ValidatePattern(pattern) != nil {
		return nil, nil
	}
	if ok, err := h.can(ctx, c, pattern, auth.ActionPull); err != nil || !ok {
		return nil, err
	}
	edit, err := h.can(ctx, c, pattern, auth.ActionDelete)
	if err != nil {
		return nil, err
	}
	return h.policies(ctx, pattern, edit, "/u/"+ns)
}

// orgMembers lists ns's members when ns is an organisation the caller
// administers (or the caller is a registry admin): those may manage them.
func (h *Handler) orgMembers(r *http.Request, c caller, ns string) ([]auth.Member, bool, error) {
	if c.sub.Anonymous() {
		return nil, false, nil
	}
	ctx := r.Context()
	if isOrg, err := h.auth.IsOrg(ctx, ns); err != nil || !isOrg {
		return nil, false, err
	}
	may, err := h.auth.MayManageOrg(ctx, c.sub, ns)
	if err != nil || !may {
		return nil, false, err
	}
	members, err := h.auth.ListMembers(ctx, ns)
	return members, err == nil, err
}

// internal logs an unexpected failure and answers 500 without detail.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, c caller, err error) {
	h.log.ErrorContext(r.Context(), "web request failed", "path", r.URL.Path, "err", err)
	h.showError(w, r, c, http.StatusInternalServerError, "Something went wrong on the server.")
}

// privateOf says which repositories of a page are private: one lookup per
// row of a page, never per repository of the registry.
func (h *Handler) privateOf(r *http.Request, repos []registry.RepositoryInfo) (map[string]bool, error) {
	out := map[string]bool{}
	if h.open() {
		return out, nil
	}
	for _, info := range repos {
		v, err := h.auth.Visibility(r.Context(), info.Name)
		if err != nil {
			return nil, err
		}
		out[info.Name] = v == auth.Private
	}
	return out, nil
}
