package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// repoHeader is what every repository page shows at the top.
type repoHeader struct {
	Info      *registry.RepositoryInfo
	Namespace string
	Short     string // the name without its namespace
	Private   bool
	CanPush   bool
	CanDelete bool
	Tab       repoView
	URLs      map[string]string
}

// repoContext loads the repository a request names, checking that the
// caller may pull it. Private repositories the caller may not pull are
// "not found", so that their names do not leak.
func (h *Handler) repoContext(w http.ResponseWriter, r *http.Request, c caller, name string, tab repoView) (*repoHeader, bool) {
	ctx := r.Context()
	if ok, err := h.can(ctx, c, name, auth.ActionPull); err != nil {
		h.internal(w, r, c, err)
		return nil, false
	} else if !ok {
		h.notFoundOrSignIn(w, r, c, "No such repository.")
		return nil, false
	}
	info, err := h.reg.RepositoryInfo(ctx, name)
	if err != nil {
		h.domainError(w, r, c, err)
		return nil, false
	}
	hd := &repoHeader{Info: info, Namespace: auth.Namespace(name), Short: name, Tab: tab}
	if hd.Namespace != "" {
		hd.Short = name[len(hd.Namespace)+1:]
	}
	if hd.CanPush, err = h.can(ctx, c, name, auth.ActionPush); err != nil {
		h.internal(w, r, c, err)
		return nil, false
	}
	if hd.CanDelete, err = h.can(ctx, c, name, auth.ActionDelete); err != nil {
		h.internal(w, r, c, err)
		return nil, false
	}
	if !h.open() {
		v, err := h.auth.Visibility(ctx, name)
		if err != nil {
			h.internal(w, r, c, err)
			return nil, false
		}
		hd.Private = v == auth.Private
	}
	hd.URLs = map[string]string{
		"overview": repoURL(name, viewOverview, ""),
		"tags":     repoURL(name, viewTags, ""),
		"settings": repoURL(name, viewSettings, ""),
		"history":  repoURL(name, viewHistory, ""),
	}
	return hd, true
}

// notFoundOrSignIn answers an anonymous caller with the sign-in page
// (the repository may be private) and a signed-in one with 404.
func (h *Handler) notFoundOrSignIn(w http.ResponseWriter, r *http.Request, c caller, msg string) {
	if c.sub.Anonymous() && !h.open() && r.Method == http.MethodGet {
		http.Redirect(w, r, "/signin?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	h.showError(w, r, c, http.StatusNotFound, msg)
}

// domainError maps registry errors to pages.
func (h *Handler) domainError(w http.ResponseWriter, r *http.Request, c caller, err error) {
	switch {
	case errors.Is(err, registry.ErrNameUnknown), errors.Is(err, registry.ErrNameInvalid):
		h.showError(w, r, c, http.StatusNotFound, "No such repository.")
	case errors.Is(err, registry.ErrManifestUnknown), errors.Is(err, registry.ErrTagInvalid), errors.Is(err, registry.ErrDigestInvalid):
		h.showError(w, r, c, http.StatusNotFound, "No such tag or manifest.")
	case errors.Is(err, registry.ErrDenied):
		// A policy refused the change (an immutable tag): its message
		// names the rule.
		var de *registry.Error
		msg := "A policy of this repository refuses the change."
		if errors.As(err, &de) {
			msg = de.Message
		}
		h.showError(w, r, c, http.StatusForbidden, msg)
	default:
		h.internal(w, r, c, err)
	}
}

// repoPage serves GET /r/….
func (h *Handler) repoPage(w http.ResponseWriter, r *http.Request) {
	c, err := h.identify(r)
	if err != nil {
		h.showError(w, r, caller{}, http.StatusUnauthorized, "Your credentials were not accepted.")
		return
	}
	rt := parseRepoPath(r.PathValue("path"), r.URL.Query())
	hd, ok := h.repoContext(w, r, c, rt.Name, rt.View)
	if !ok {
		return
	}
	switch rt.View {
	case viewTags:
		h.tagsPage(w, r, c, hd)
	case viewTag, viewManifest:
		h.imagePage(w, r, c, hd, rt)
	case viewHistory:
		h.historyPage(w, r, c, hd, rt.Ref)
	case viewSettings:
		if !hd.CanPush {
			h.showError(w, r, c, http.StatusForbidden, "Only the repository's writers may change its settings.")
			return
		}
		pols, err := h.policies(r.Context(), rt.Name, hd.CanDelete, hd.URLs["settings"])
		if err != nil {
			h.internal(w, r, c, err)
			return
		}
		ret, err := h.retentionPanel(r.Context(), rt.Name)
		if err != nil {
			h.internal(w, r, c, err)
			return
		}
		h.show(w, r, c, http.StatusOK, "repo_settings", rt.Name+" settings", struct {
			Repo      *repoHeader
			Policies  *policyPanel
			Retention *retentionPanel
		}{hd, pols, ret})
	default:
		h.overviewPage(w, r, c, hd)
	}
}

type overview struct {
	Repo   *repoHeader
	Recent []registry.TagDetail
	// Lines are the floating tags and the versions they stand for.
	Lines []registry.VersionLine
	// UsedBy is the first page of the tags built on this repository
	// (for golden images), UsedByCount how many there are.
	UsedBy      []registry.DerivedImage
	UsedByCount int
	// Usage is the storage the repository uses, against its namespace's
	// quota.
	Usage *registry.Usage
}

// usedByLimit bounds the "used by" list of an overview; the JSON API
// pages through the rest.
const usedByLimit = 50

func (h *Handler) overviewPage(w http.ResponseWriter, r *http.Request, c caller, hd *repoHeader) {
	ctx := r.Context()
	recent, _, err := h.reg.ListTagDetails(ctx, hd.Info.Name, registry.TagQuery{Sort: registry.SortByLastPushed, Limit: 5})
	if err != nil {
		h.domainError(w, r, c, err)
		return
	}
	lines, err := h.reg.VersionLines(r.Context(), hd.Info.Name)
	if err != nil {
		h.domainError(w, r, c, err)
		return
	}
	data := overview{Repo: hd, Recent: recent, Lines: lines}
	usage, err := h.reg.RepositoryUsage(ctx, hd.Info.Name)
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	data.Usage = &usage
	vis, err := h.visibleTo(ctx, c)
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	if data.UsedBy, data.UsedByCount, err = h.reg.DerivedImages(ctx, hd.Info.Name, registry.DerivedQuery{Visible: vis, Limit: usedByLimit}); err != nil {
		h.domainError(w, r, c, err)
		return
	}
	h.show(w, r, c, http.StatusOK, "repo", hd.Info.Name, data)
}

type tagRow struct {
	registry.TagDetail
	URL        string
	HistoryURL string
}

type tagList struct {
	Repo   *repoHeader
	Filter string
	Sort   string
	Tags   []tagRow
	Pager  pager
}

func (h *Handler) tagsPage(w http.ResponseWriter, r *http.Request, c caller, hd *repoHeader) {
	q := r.URL.Query()
	sort := registry.SortByLastPushed
	if q.Get("sort") == "name" {
		sort = registry.SortByName
	}
	page := pageParam(r)
	tags, total, err := h.reg.ListTagDetails(r.Context(), hd.Info.Name, registry.TagQuery{
		Filter: q.Get("name"), Sort: sort, Offset: (page - 1) * pageSize, Limit: pageSize,
	})
	if err != nil {
		h.domainError(w, r, c, err)
		return
	}
	data := tagList{Repo: hd, Filter: q.Get("name"), Sort: sort, Pager: newPager(r.URL, page, pageSize, total)}
	for _, t := range tags {
		data.Tags = append(data.Tags, tagRow{TagDetail: t, URL: repoURL(hd.Info.Name, viewTag, t.Name),
			HistoryURL: repoURL(hd.Info.Name, viewHistory, t.Name)})
	}
	h.show(w, r, c, http.StatusOK, "tags", hd.Info.Name+" tags", data)
}

type platformLink struct {
	registry.Platform
	URL string
}

type imageView struct {
	Repo      *repoHeader
	Tag       *registry.TagDetail
	Image     *registry.Image
	Platforms []platformLink
	Referrers []platformLink
	PullRef   string
	// Base is the image this one was built on, nil when none is known
	// or the viewer may not pull it.
	Base *registry.BaseInfo
}

func (h *Handler) imagePage(w http.ResponseWriter, r *http.Request, c caller, hd *repoHeader, rt repoRoute) {
	ctx := r.Context()
	data := imageView{Repo: hd, PullRef: hd.Info.Name + ":" + rt.Ref}
	if rt.View == viewTag {
		tag, err := h.reg.TagDetail(ctx, hd.Info.Name, rt.Ref)
		if err != nil {
			h.domainError(w, r, c, err)
			return
		}
		data.Tag = tag
	} else {
		data.PullRef = hd.Info.Name + "@" + rt.Ref
	}
	img, err := h.reg.Image(ctx, hd.Info.Name, rt.Ref)
	if err != nil {
		h.domainError(w, r, c, err)
		return
	}
	data.Image = img
	if data.Base, err = h.imageBase(ctx, c, hd.Info.Name, rt.Ref); err != nil {
		h.internal(w, r, c, err)
		return
	}
	for _, p := range img.Platforms {
		data.Platforms = append(data.Platforms, platformLink{p, repoURL(hd.Info.Name, viewManifest, p.Digest.String())})
	}
	for _, d := range img.Referrers {
		data.Referrers = append(data.Referrers, platformLink{registry.Platform{Digest: d.Digest, MediaType: d.ArtifactType, Size: d.Size},
			repoURL(hd.Info.Name, viewManifest, d.Digest.String())})
	}
	title := data.PullRef
	h.show(w, r, c, http.StatusOK, "image", title, data)
}

// imageBase is the base of repo:ref if one is known and c may pull it.
func (h *Handler) imageBase(ctx context.Context, c caller, repo, ref string) (*registry.BaseInfo, error) {
	b, err := h.reg.ImageBase(ctx, repo, ref)
	if err != nil || b.Name == "" {
		return nil, err
	}
	if ok, err := h.can(ctx, c, b.Name, auth.ActionPull); err != nil || !ok {
		return nil, err
	}
	return b, nil
}

// repoAction serves the forms under /r/…: deleting a tag, and the
// settings (description, visibility, deleting the repository).
func (h *Handler) repoAction(w http.ResponseWriter, r *http.Request) {
	c, err := h.identify(r)
	if err != nil || !checkCSRF(r, c) {
		h.showError(w, r, c, http.StatusForbidden, "The form expired or came from another site; reload the page and try again.")
		return
	}
	rt := parseRepoPath(r.PathValue("path"), r.URL.Query())
	ctx := actingAs(r.Context(), c)
	need := auth.ActionDelete
	if op := r.PostFormValue("op"); op == "description" || op == "restore" {
		need = auth.ActionPush
	}
	if ok, err := h.can(ctx, c, rt.Name, need); err != nil {
		h.internal(w, r, c, err)
		return
	} else if !ok {
		h.denied(ctx, r, c, rt.Name, need)
		h.showError(w, r, c, http.StatusForbidden, "You may not change this repository.")
		return
	}
	next, err := h.applyRepoAction(ctx, r, rt)
	if msg, ok := policyFormError(err); ok {
		h.showError(w, r, c, http.StatusBadRequest, msg)
		return
	}
	if errors.Is(err, registry.ErrDescriptionInvalid) || errors.Is(err, auth.ErrInvalid) || errors.Is(err, errBadForm) {
		h.showError(w, r, c, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		h.domainError(w, r, c, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) applyRepoAction(ctx context.Context, r *http.Request, rt repoRoute) (string, error) {
	switch op := r.PostFormValue("op"); {
	case rt.View == viewTag && op == "delete":
		if err := h.reg.DeleteManifest(registry.WithTagVia(ctx, registry.ViaUI), rt.Name, rt.Ref); err != nil {
			return "", err
		}
		return repoURL(rt.Name, viewTags, "") + "?flash=tag-deleted", nil
	case rt.View == viewHistory && op == "restore":
		tag := r.PostFormValue("tag")
		d, err := digest.Parse(r.PostFormValue("digest"))
		if err != nil {
			return "", fmt.Errorf("digest %q: %w", r.PostFormValue("digest"), errBadForm)
		}
		if _, err := h.reg.RestoreTag(ctx, rt.Name, tag, d); err != nil {
			return "", err
		}
		return withFlash(repoURL(rt.Name, viewHistory, tag), "tag-restored"), nil
	case rt.View == viewSettings && op == "description":
		if err := h.reg.SetRepositoryDescription(ctx, rt.Name, r.PostFormValue("description"), r.PostFormValue("readme")); err != nil {
			return "", err
		}
		return repoURL(rt.Name, viewOverview, ""), nil
	case rt.View == viewSettings && op == "visibility" && !h.open():
		if err := h.auth.SetVisibility(ctx, rt.Name, auth.Visibility(r.PostFormValue("visibility"))); err != nil {
			return "", err
		}
		return repoURL(rt.Name, viewSettings, "") + "?flash=visibility-changed", nil
	case rt.View == viewSettings && op == "retention-run":
		if _, err := h.reg.RunRetention(ctx, rt.Name, "manual"); err != nil {
			return "", err
		}
		return repoURL(rt.Name, viewSettings, "") + "?flash=retention-ran#policies-h", nil
	case rt.View == viewSettings && (op == "policy-set" || op == "policy-rm"):
		if err := h.applyPolicyForm(ctx, r, rt.Name); err != nil {
			return "", err
		}
		return repoURL(rt.Name, viewSettings, "") + "?flash=policy-changed#policies-h", nil
	case rt.View == viewSettings && op == "delete":
		if r.PostFormValue("confirm") != rt.Name {
			return "", fmt.Errorf("type the repository's name to confirm: %w", errBadForm)
		}
		if err := h.reg.DeleteRepository(ctx, rt.Name); err != nil {
			return "", err
		}
		return "/?flash=repo-deleted", nil
	}
	return "", fmt.Errorf("no such action: %w", errBadForm)
}

// errBadForm is a form that asks for nothing this page does.
var errBadForm = errors.New("bad form")

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
