package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/forwarded"
	"github.com/wharf/wharf/internal/registry"
)

// repoName joins the {ns} and {repo} path values.
func repoName(r *http.Request) string { return r.PathValue("ns") + "/" + r.PathValue("repo") }

// apiRepo is the start of every call on one repository: it identifies the
// caller and checks action on the repository the path names, answering
// the request itself when either fails.
func (h *Handler) apiRepo(w http.ResponseWriter, r *http.Request, action string) (caller, string, bool) {
	c, ok := h.apiCaller(w, r)
	if !ok {
		return c, "", false
	}
	name := repoName(r)
	return c, name, h.apiRepoAccess(w, r, c, name, action)
}

// apiListRepos is GET /v2/namespaces/{ns}/repositories and the legacy
// GET /v2/repositories/{ns}/: the namespace's repositories the caller may
// see, newest push first unless ordering=name.
func (h *Handler) apiListRepos(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiCaller(w, r)
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
	sort := registry.SortByLastPushed
	if o := r.URL.Query().Get("ordering"); o == "name" || o == "-name" {
		sort = registry.SortByName
	}
	infos, total, err := h.reg.ListRepositoryInfo(r.Context(), registry.RepositoryQuery{
		Namespace: r.PathValue("ns"), Search: r.URL.Query().Get("name"), Visible: vis, Sort: sort,
		Offset: (page - 1) * size, Limit: size,
	})
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	if pageGone(w, page, len(infos)) {
		return
	}
	results := make([]hubRepo, 0, len(infos))
	for i := range infos {
		hr, err := h.hubRepo(r, &infos[i])
		if err != nil {
			h.apiInternal(w, r, err)
			return
		}
		results = append(results, hr)
	}
	writeJSON(w, http.StatusOK, envelope(r, page, size, total, results))
}

// apiGetRepo is one repository, with its readme as full_description.
func (h *Handler) apiGetRepo(w http.ResponseWriter, r *http.Request) {
	_, name, ok := h.apiRepo(w, r, auth.ActionPull)
	if !ok {
		return
	}
	info, err := h.reg.RepositoryInfo(r.Context(), name)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	hr, err := h.hubRepo(r, info)
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	hr.FullDescription = &info.Readme
	writeJSON(w, http.StatusOK, hr)
}

// apiDeleteRepo deletes a repository (202, as Hub answers).
func (h *Handler) apiDeleteRepo(w http.ResponseWriter, r *http.Request) {
	c, name, ok := h.apiRepo(w, r, auth.ActionDelete)
	if !ok {
		return
	}
	if err := h.reg.DeleteRepository(actingAs(r.Context(), c), name); err != nil {
		h.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// apiListTags lists a repository's tags, newest first (Hub's
// ordering=last_updated, its default) or by name, filtered by ?name=.
func (h *Handler) apiListTags(w http.ResponseWriter, r *http.Request) {
	_, name, ok := h.apiRepo(w, r, auth.ActionPull)
	if !ok {
		return
	}
	page, size, ok := hubPaging(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	sort := registry.SortByLastPushed
	if o := q.Get("ordering"); o == "name" || o == "-name" {
		sort = registry.SortByName
	}
	tags, total, err := h.reg.ListTagDetails(r.Context(), name, registry.TagQuery{
		Filter: q.Get("name"), Sort: sort, Offset: (page - 1) * size, Limit: size,
	})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if pageGone(w, page, len(tags)) {
		return
	}
	results := make([]hubTag, 0, len(tags))
	for i := range tags {
		results = append(results, hubTagOf(&tags[i]))
	}
	writeJSON(w, http.StatusOK, envelope(r, page, size, total, results))
}

// apiGetTag is GET or HEAD of one tag.
func (h *Handler) apiGetTag(w http.ResponseWriter, r *http.Request) {
	_, name, ok := h.apiRepo(w, r, auth.ActionPull)
	if !ok {
		return
	}
	tag, err := h.reg.TagDetail(r.Context(), name, r.PathValue("tag"))
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hubTagOf(tag))
}

// apiDeleteTag deletes one tag (204, as Hub answers); the manifest stays.
func (h *Handler) apiDeleteTag(w http.ResponseWriter, r *http.Request) {
	c, name, ok := h.apiRepo(w, r, auth.ActionDelete)
	if !ok {
		return
	}
	tag := r.PathValue("tag")
	if registry.IsDigestReference(tag) {
		// This route deletes tags; a digest here would delete a manifest.
		writeAPIError(w, http.StatusNotFound, "object not found")
		return
	}
	if err := h.reg.DeleteManifest(actingAs(r.Context(), c), name, tag); err != nil {
		h.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxJSONBody bounds the small JSON bodies of login and token requests.
const maxJSONBody = 64 << 10

// apiLogin is POST /v2/auth/token ({"identifier","secret"} →
// {"access_token"}) and the older POST /v2/users/login ({"username",
// "password"} → {"token"}): a bearer token for this API.
func (h *Handler) apiLogin(w http.ResponseWriter, r *http.Request) {
	if h.open() {
		writeAPIError(w, http.StatusNotFound, "this registry runs without accounts")
		return
	}
	var body struct {
		Identifier string `json:"identifier"`
		Secret     string `json:"secret"`
		Username   string `json:"username"`
		Password   string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody)).Decode(&body); err != nil {
		writeAPIError(w, http.StatusBadRequest, "the body must be a JSON object")
		return
	}
	user, secret := body.Identifier, body.Secret
	if user == "" && secret == "" {
		user, secret = body.Username, body.Password
	}
	sub, err := h.auth.Authenticate(r.Context(), user, secret, forwarded.ClientAddr(r))
	var limited *auth.RateLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		writeAPIError(w, http.StatusTooManyRequests, "too many failed login attempts")
		return
	case errors.Is(err, auth.ErrUnauthenticated):
		writeAPIError(w, http.StatusUnauthorized, "incorrect username or password")
		return
	case err != nil:
		h.apiInternal(w, r, err)
		return
	}
	issued, err := h.tokens.Issue(sub.User, sub.TokenID, []auth.Access{hubGrant(sub)})
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	if strings.TrimSuffix(r.URL.Path, "/") == "/v2/users/login" {
		writeJSON(w, http.StatusOK, map[string]string{"token": issued.Token})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"access_token": issued.Token})
}

// hubScopes maps Hub's token scopes to wharf's.
var hubScopes = map[string]auth.TokenScope{
	"repo:admin":       auth.ScopeReadWriteDelete,
	"repo:write":       auth.ScopeReadWrite,
	"repo:read":        auth.ScopeRead,
	"repo:public_read": auth.ScopeRead,
}

func hubScopeOf(s auth.TokenScope) string {
	switch s {
	case auth.ScopeReadWriteDelete:
		return "repo:admin"
	case auth.ScopeReadWrite:
		return "repo:write"
	}
	return "repo:read"
}

// hubToken is a personal access token as Hub's API shows it.
type hubToken struct {
	UUID        string   `json:"uuid"`
	ClientID    string   `json:"client_id"`
	Creator     string   `json:"creator_ua"`
	LastUsed    *string  `json:"last_used"`
	GeneratedBy string   `json:"generated_by"`
	IsActive    bool     `json:"is_active"`
	Token       string   `json:"token"`
	TokenLabel  string   `json:"token_label"`
	Scopes      []string `json:"scopes"`
	CreatedAt   *string  `json:"created_at"`
	ExpiresAt   *string  `json:"expires_at"`
}

func hubTokenOf(t *auth.Token, secret string) hubToken {
	return hubToken{
		UUID: t.ID, ClientID: "wharf", GeneratedBy: "manual", IsActive: t.Usable(time.Now()),
		Token: secret, TokenLabel: t.Name, Scopes: []string{hubScopeOf(t.Scope)},
		LastUsed: hubTime(t.LastUsed), CreatedAt: hubTime(t.CreatedAt), ExpiresAt: hubTime(t.ExpiresAt),
	}
}
