package web

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/forwarded"
	"github.com/wharf/wharf/internal/registry"
)

// The Hub-style JSON API: Docker Hub's envelope, field names and paging,
// so that scripts written for Hub work by changing the host.

// Hub's paging defaults.
const (
	hubDefaultPageSize = 10
	hubMaxPageSize     = 100
)

// hubPage is Hub's list envelope.
type hubPage struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  any     `json:"results"`
}

// hubRepo is a repository as Hub's API shows it.
type hubRepo struct {
	Name            string  `json:"name"`
	Namespace       string  `json:"namespace"`
	RepositoryType  string  `json:"repository_type"`
	Status          int     `json:"status"`
	Description     string  `json:"description"`
	IsPrivate       bool    `json:"is_private"`
	StarCount       int     `json:"star_count"`
	PullCount       int64   `json:"pull_count"`
	LastUpdated     *string `json:"last_updated"`
	DateRegistered  string  `json:"date_registered"`
	StorageSize     int64   `json:"storage_size"`
	FullDescription *string `json:"full_description,omitempty"`
}

// hubImage is one platform of a tag.
type hubImage struct {
	Architecture string  `json:"architecture"`
	OS           string  `json:"os"`
	Variant      *string `json:"variant"`
	Digest       string  `json:"digest"`
	Size         int64   `json:"size"`
	Status       string  `json:"status"`
	LastPushed   *string `json:"last_pushed"`
	LastPulled   *string `json:"last_pulled"`
}

// hubTag is a tag as Hub's API shows it.
type hubTag struct {
	Name                string     `json:"name"`
	Digest              string     `json:"digest"`
	FullSize            int64      `json:"full_size"`
	LastUpdated         *string    `json:"last_updated"`
	LastUpdaterUsername string     `json:"last_updater_username"`
	TagStatus           string     `json:"tag_status"`
	TagLastPushed       *string    `json:"tag_last_pushed"`
	TagLastPulled       *string    `json:"tag_last_pulled"`
	MediaType           string     `json:"media_type"`
	ContentType         string     `json:"content_type"`
	V2                  bool       `json:"v2"`
	Images              []hubImage `json:"images"`
}

// hubTime formats t as Hub does (RFC 3339, microseconds, Z), nil if zero.
func hubTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05.000000Z")
	return &s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeAPIError answers in Hub's error shape.
func writeAPIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "errinfo": map[string]any{}})
}

// hubPaging is paging for a Hub API route, answering a bad page or
// page_size with Hub's 400.
func hubPaging(w http.ResponseWriter, r *http.Request) (page, size int, ok bool) {
	if page, size, ok = paging(r); !ok {
		writeAPIError(w, http.StatusBadRequest, "page and page_size must be positive integers")
	}
	return page, size, ok
}

// paging reads page and page_size as Hub does: page 1-based, page_size
// 10 by default and at most 100.
func paging(r *http.Request) (page, size int, ok bool) {
	q := r.URL.Query()
	page, size = 1, hubDefaultPageSize
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, false
		}
		page = n
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, false
		}
		size = min(n, hubMaxPageSize)
	}
	return page, size, true
}

// envelope builds the page with absolute next/previous links that keep
// the request's other parameters.
func envelope(r *http.Request, page, size, total int, results any) hubPage {
	link := func(p int) *string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		if forwarded.Secure(r) {
			u.Scheme = "https"
		}
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("page_size", strconv.Itoa(size))
		u.RawQuery = q.Encode()
		s := u.String()
		return &s
	}
	env := hubPage{Count: total, Results: results}
	if page*size < total {
		env.Next = link(page + 1)
	}
	if page > 1 {
		env.Previous = link(page - 1)
	}
	return env
}

// pageGone answers a page past the end the way Docker Hub does (404,
// "invalid page") and says so; the first page is never gone, an empty
// first page is an empty list.
func pageGone(w http.ResponseWriter, page, n int) bool {
	if page > 1 && n == 0 {
		writeAPIError(w, http.StatusNotFound, "invalid page")
		return true
	}
	return false
}

// apiGuard keeps other sites from acting through the API. A browser
// sends its cached Basic credentials with a cross-site form post, whose
// types are text/plain, multipart/form-data and urlencoded: a POST must
// carry JSON, which a page on another site can send only after a CORS
// preflight that wharf never grants. A change without the session cookie
// from a foreign Origin is refused too (scripts and curl send none); one
// with the cookie must repeat the session's CSRF token (apiCaller).
func apiGuard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next(w, r)
			return
		}
		if !cookieCall(r) && !sameOrigin(r) {
			writeAPIError(w, http.StatusForbidden, "requests from another site's pages are refused (Origin "+r.Header.Get("Origin")+")")
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeAPIError(w, http.StatusUnsupportedMediaType, "the body must be JSON, sent with Content-Type: application/json")
				return
			}
		}
		next(w, r)
	}
}

// cookieCall reports whether r authenticates with the session cookie:
// credentials in a header win over it (identify).
func cookieCall(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return false
	}
	_, err := r.Cookie(cookieName(r, sessionCookie))
	return err == nil
}

// sameOrigin reports whether r's Origin, if it has one, is this site. The
// scheme is not compared: behind a TLS proxy that is not a trusted proxy,
// wharf sees http while the browser says https.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
}

// apiCaller identifies an API caller; wrong credentials are answered 401.
func (h *Handler) apiCaller(w http.ResponseWriter, r *http.Request) (caller, bool) {
	c, err := h.identify(r)
	var limited *auth.RateLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		writeAPIError(w, http.StatusTooManyRequests, "too many failed login attempts")
		return c, false
	case err != nil && (errors.Is(err, auth.ErrUnauthenticated) || errors.Is(err, auth.ErrInvalidToken)):
		writeAPIError(w, http.StatusUnauthorized, "incorrect authentication credentials")
		return c, false
	case err != nil:
		h.apiInternal(w, r, err)
		return c, false
	}
	// A browser's cookie authorises only safe requests unless the page
	// repeats the session's CSRF token; scripts send credentials in a
	// header.
	if c.how == viaCookie && r.Method != http.MethodGet && r.Method != http.MethodHead && !checkCSRF(r, c) {
		writeAPIError(w, http.StatusForbidden, "missing CSRF token")
		return c, false
	}
	return c, true
}

func (h *Handler) apiInternal(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "hub api request failed", "path", r.URL.Path, "err", err)
	writeAPIError(w, http.StatusInternalServerError, "internal error")
}

// apiRepoAccess checks that the caller may do action on ns/repo. A
// repository the caller may not pull is "not found", as on Hub; one it
// may pull but not change is 403 (401 for an anonymous caller).
func (h *Handler) apiRepoAccess(w http.ResponseWriter, r *http.Request, c caller, name, action string) bool {
	ctx := r.Context()
	pull, err := h.can(ctx, c, name, auth.ActionPull)
	if err != nil {
		h.apiInternal(w, r, err)
		return false
	}
	if !pull {
		writeAPIError(w, http.StatusNotFound, "object not found")
		return false
	}
	if action == auth.ActionPull {
		return true
	}
	return h.apiMay(w, r, c, name, action)
}

// apiMay checks that the caller may do action on name, answering 401 to
// an anonymous caller and 403 (with an audit line) to another.
func (h *Handler) apiMay(w http.ResponseWriter, r *http.Request, c caller, name, action string) bool {
	ctx := r.Context()
	ok, err := h.can(ctx, c, name, action)
	switch {
	case err != nil:
		h.apiInternal(w, r, err)
		return false
	case !ok && c.sub.Anonymous():
		writeAPIError(w, http.StatusUnauthorized, "authentication required")
		return false
	case !ok:
		h.denied(ctx, r, c, name, action)
		writeAPIError(w, http.StatusForbidden, "insufficient permissions")
		return false
	}
	return true
}

// apiError maps registry errors to Hub's answers.
func (h *Handler) apiError(w http.ResponseWriter, r *http.Request, err error) {
	var de *registry.Error
	switch {
	case errors.Is(err, registry.ErrDenied) && errors.As(err, &de):
		// A tag write the policies refuse (an immutable tag).
		writeSpecError(w, http.StatusForbidden, "DENIED", de.Message)
	case errors.Is(err, registry.ErrNameUnknown), errors.Is(err, registry.ErrNameInvalid),
		errors.Is(err, registry.ErrManifestUnknown), errors.Is(err, registry.ErrTagInvalid):
		writeAPIError(w, http.StatusNotFound, "object not found")
	default:
		h.apiInternal(w, r, err)
	}
}

func (h *Handler) hubRepo(r *http.Request, info *registry.RepositoryInfo) (hubRepo, error) {
	ns := auth.Namespace(info.Name)
	out := hubRepo{
		Name: info.Name[len(ns)+min(len(ns), 1):], Namespace: ns, RepositoryType: "image", Status: 1,
		Description: info.Description, PullCount: info.PullCount, LastUpdated: hubTime(info.LastPushed),
		DateRegistered: *hubTime(info.CreatedAt), StorageSize: info.StorageSize,
	}
	if !h.open() {
		v, err := h.auth.Visibility(r.Context(), info.Name)
		if err != nil {
			return out, err
		}
		out.IsPrivate = v == auth.Private
	}
	return out, nil
}

func hubTagOf(t *registry.TagDetail) hubTag {
	out := hubTag{
		Name: t.Name, Digest: t.Digest.String(), FullSize: t.Size, LastUpdated: hubTime(t.PushedAt),
		LastUpdaterUsername: t.PushedBy, TagStatus: "active", TagLastPushed: hubTime(t.PushedAt),
		TagLastPulled: hubTime(t.LastPulled), MediaType: t.MediaType, ContentType: "image", V2: true,
		Images: []hubImage{},
	}
	// Hub calls a tag inactive when neither pushed nor pulled for a month.
	last := t.PushedAt
	if t.LastPulled.After(last) {
		last = t.LastPulled
	}
	if time.Since(last) > 30*24*time.Hour {
		out.TagStatus = "inactive"
	}
	if t.ArtifactType != "" {
		out.ContentType = "unrecognized"
	}
	for _, p := range t.Platforms {
		img := hubImage{Architecture: p.Architecture, OS: p.OS, Digest: p.Digest.String(), Size: p.Size,
			Status: "active", LastPushed: hubTime(t.PushedAt), LastPulled: hubTime(t.LastPulled)}
		if p.Variant != "" {
			v := p.Variant
			img.Variant = &v
		}
		out.Images = append(out.Images, img)
	}
	return out
}
