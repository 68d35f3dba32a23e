package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// docker search: dockerd pings /v1/_ping on the registry named in the
// term (127.0.0.1:5000/gallery), then asks /v1/search?q=gallery&n=25 in
// Docker Hub's v1 shape. Nothing else of the v1 API exists here.

// searchDefaultSize is Hub's page size when n is absent.
const searchDefaultSize = 25

// searchResult is one repository as Hub's v1 search shows it.
type searchResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
	IsAutomated bool   `json:"is_automated"`
}

// searchPage is Hub's v1 search envelope.
type searchPage struct {
	Query      string         `json:"query"`
	NumResults int            `json:"num_results"`
	NumPages   int            `json:"num_pages"`
	Page       int            `json:"page"`
	PageSize   int            `json:"page_size"`
	Results    []searchResult `json:"results"`
}

// v1Ping answers dockerd's probe before a search. Standalone tells it
// that this is a registry without a separate index: over HTTPS it then
// sends the logged-in user's Basic credentials with every request.
func (h *Handler) v1Ping(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Docker-Registry-Standalone", "true")
	w.Header().Set("X-Docker-Registry-Version", "0.6.0")
	writeJSON(w, http.StatusOK, true)
}

// v1Search lists the repositories matching q that the caller may pull,
// ranked as the web UI's search ranks them.
func (h *Handler) v1Search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, ok := searchNumber(q.Get("n"), searchDefaultSize, 100)
	if !ok {
		writeSpecError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a number from 1 to 100")
		return
	}
	page, ok := searchNumber(q.Get("page"), 1, 0)
	if !ok {
		writeSpecError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "page must be a positive number")
		return
	}
	c, err := h.searchCaller(r)
	var limited *auth.RateLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		writeSpecError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "too many failed logins; try again later")
		return
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrInvalidToken):
		writeSpecError(w, http.StatusUnauthorized, "UNAUTHORIZED", "incorrect username, password or token")
		return
	case err != nil:
		h.log.ErrorContext(r.Context(), "search failed", "err", err)
		writeSpecError(w, http.StatusInternalServerError, "UNKNOWN", "internal error")
		return
	}
	vis, err := h.visibleTo(r.Context(), c)
	if err != nil {
		h.log.ErrorContext(r.Context(), "search failed", "err", err)
		writeSpecError(w, http.StatusInternalServerError, "UNKNOWN", "internal error")
		return
	}
	term := q.Get("q")
	repos, total, err := h.reg.SearchRepositories(r.Context(), registry.RepositoryQuery{
		Search: term, Visible: vis, Offset: (page - 1) * size, Limit: size,
	})
	if err != nil {
		h.log.ErrorContext(r.Context(), "search failed", "err", err)
		writeSpecError(w, http.StatusInternalServerError, "UNKNOWN", "internal error")
		return
	}
	out := searchPage{Query: term, NumResults: total, NumPages: max(1, (total+size-1)/size), Page: page, PageSize: size,
		Results: make([]searchResult, 0, len(repos))}
	for _, info := range repos {
		out.Results = append(out.Results, searchResult{Name: info.Name, Description: info.Description})
	}
	writeJSON(w, http.StatusOK, out)
}

// searchCaller identifies a search's caller as dockerd sends it: Basic
// credentials of `docker login`, or, for an account that logged in with
// an identity token, a bearer token from /token with the scope
// registry:catalog:search. Any other caller is identified as by the
// pages and the Hub API.
func (h *Handler) searchCaller(r *http.Request) (caller, error) {
	if h.open() {
		return caller{}, nil
	}
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return h.identify(r)
	}
	claims, err := h.auth.VerifyBearer(r.Context(), h.tokens, strings.TrimSpace(value))
	if err != nil {
		return caller{}, err
	}
	if !claims.Allows(auth.TypeRegistry, auth.CatalogName, auth.ActionSearch) {
		sub, err := h.hubSubject(r.Context(), claims)
		return caller{sub: sub, how: viaBearer}, err
	}
	sub, err := h.auth.SubjectFor(r.Context(), claims.Subject)
	return caller{sub: sub, how: viaBearer}, err
}

// searchNumber parses a positive query number, def when empty; limit, if
// not 0, is the largest allowed.
func searchNumber(v string, def, limit int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || (limit > 0 && n > limit) {
		return 0, false
	}
	return n, true
}
