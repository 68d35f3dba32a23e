// Package web is wharf's browser face and its Docker Hub-shaped JSON API:
// server-rendered pages (html/template, embedded assets, no build step)
// and the /v2/namespaces, /v2/repositories, /v2/auth and
// /v2/access-tokens routes that scripts written for Docker Hub call. It
// reads and changes the registry only through internal/registry, and asks
// internal/auth who the caller is and what they may do.
package web

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/notify"
	"github.com/wharf/wharf/internal/proxy"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/replicate"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options are a Handler's dependencies.
type Options struct {
	Registry *registry.Service
	// Auth and Tokens are nil when the registry runs open (--auth=none):
	// then everyone may do everything and nobody signs in.
	Auth   *auth.Service
	Tokens *auth.Tokens
	Log    *slog.Logger
	// Webhooks manages the namespaces' hooks; nil when the database keeps
	// none.
	Webhooks *notify.Service
	// Mirror is the pull-through cache, nil when nothing is mirrored.
	Mirror *proxy.Mirror
	// Replication manages the namespaces' replication rules; nil when
	// the database keeps none.
	Replication *replicate.Service
}

// Handler serves the UI and the Hub-style API.
type Handler struct {
	reg    *registry.Service
	auth   *auth.Service
	tokens *auth.Tokens
	log    *slog.Logger
	hooks  *notify.Service
	pages  *pages
	mux    *http.ServeMux
	mirror *proxy.Mirror
	repl   *replicate.Service
}

// New returns the handler; it panics only if the embedded templates are
// broken, which the package's tests catch.
func New(opts Options) *Handler {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Auth == nil || opts.Tokens == nil {
		opts.Auth, opts.Tokens = nil, nil
	}
	h := &Handler{reg: opts.Registry, auth: opts.Auth, tokens: opts.Tokens, log: opts.Log, hooks: opts.Webhooks, pages: mustParsePages(), mirror: opts.Mirror,
		repl: opts.Replication}
	h.mux = h.routes()
	return h
}

// open reports whether the registry runs without accounts.
func (h *Handler) open() bool { return h.auth == nil }

func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))

	mux.HandleFunc("GET /{$}", h.explore)
	mux.HandleFunc("GET /search", h.explore)
	mux.HandleFunc("GET /r/{path...}", h.repoPage)
	mux.HandleFunc("POST /r/{path...}", h.repoAction)
	mux.HandleFunc("GET /u/{name}", h.namespacePage)
	mux.HandleFunc("POST /u/{name}", h.namespaceAction)
	mux.HandleFunc("GET /signin", h.signinForm)
	mux.HandleFunc("POST /signin", h.signin)
	mux.HandleFunc("POST /signout", h.signout)
	mux.HandleFunc("GET /settings", h.accountPage)
	mux.HandleFunc("POST /settings/password", h.changePassword)
	mux.HandleFunc("POST /settings/tokens", h.createToken)
	mux.HandleFunc("POST /settings/tokens/{id}/revoke", h.revokeToken)
	mux.HandleFunc("GET /admin/gc", h.gcPage)
	mux.HandleFunc("POST /admin/gc", h.startGC)
	mux.HandleFunc("GET /admin", h.adminPage)
	mux.HandleFunc("POST /admin", h.adminAction)

	// The Hub-style API (hub.go), every path with and without a trailing
	// slash: Hub answers both with JSON, and the scripts people copy from
	// its docs (curl | jq) follow no redirect.
	hub := func(pattern string, handler http.HandlerFunc) {
		mux.HandleFunc(pattern, apiGuard(handler))
		mux.HandleFunc(pattern+"/{$}", apiGuard(handler))
	}
	hub("GET /v2/namespaces/{ns}/repositories", h.apiListRepos)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}", h.apiGetRepo)
	hub("DELETE /v2/namespaces/{ns}/repositories/{repo}", h.apiDeleteRepo)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/tags", h.apiListTags)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/tags/{tag}", h.apiGetTag)
	hub("DELETE /v2/namespaces/{ns}/repositories/{repo}/tags/{tag}", h.apiDeleteTag)
	hub("GET /v2/namespaces/{ns}/policies", h.apiPolicies)
	hub("POST /v2/namespaces/{ns}/policies", h.apiPolicies)
	hub("DELETE /v2/namespaces/{ns}/policies/{key}", h.apiPolicies)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/policies", h.apiPolicies)
	hub("POST /v2/namespaces/{ns}/repositories/{repo}/policies", h.apiPolicies)
	hub("DELETE /v2/namespaces/{ns}/repositories/{repo}/policies/{key}", h.apiPolicies)
	hub("GET /v2/namespaces/{ns}/webhooks", h.apiWebhooks)
	hub("POST /v2/namespaces/{ns}/webhooks", h.apiWebhooks)
	hub("GET /v2/namespaces/{ns}/webhooks/{id}", h.apiWebhooks)
	hub("PUT /v2/namespaces/{ns}/webhooks/{id}", h.apiWebhooks)
	hub("DELETE /v2/namespaces/{ns}/webhooks/{id}", h.apiWebhooks)
	hub("POST /v2/namespaces/{ns}/webhooks/{id}/rotate", h.apiWebhooks)
	hub("DELETE /v2/namespaces/{ns}/webhooks/{id}/rotate", h.apiWebhooks)
	hub("GET /v2/namespaces/{ns}/webhooks/{id}/deliveries", h.apiWebhooks)
	hub("POST /v2/namespaces/{ns}/webhooks/{id}/deliveries/{delivery}/redeliver", h.apiWebhooks)
	hub("GET /v2/namespaces/{ns}/replication", h.apiReplication)
	hub("POST /v2/namespaces/{ns}/replication", h.apiReplication)
	hub("GET /v2/namespaces/{ns}/replication/{id}", h.apiReplication)
	hub("PUT /v2/namespaces/{ns}/replication/{id}", h.apiReplication)
	hub("DELETE /v2/namespaces/{ns}/replication/{id}", h.apiReplication)
	hub("POST /v2/namespaces/{ns}/replication/{id}/reconcile", h.apiReplication)
	hub("GET /v2/namespaces/{ns}/usage", h.apiUsage)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/usage", h.apiUsage)
	hub("GET /v2/namespaces/{ns}/retention/preview", h.apiRetention)
	hub("POST /v2/namespaces/{ns}/retention/run", h.apiRetention)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/retention/preview", h.apiRetention)
	hub("POST /v2/namespaces/{ns}/repositories/{repo}/retention/run", h.apiRetention)
	hub("GET /v2/retention/runs", h.apiRetentionRuns)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/tags/{tag}/base", h.apiTagBase)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/tags/{tag}/history", h.apiTagHistory)
	hub("POST /v2/namespaces/{ns}/repositories/{repo}/tags/{tag}/restore", h.apiRestoreTag)
	hub("GET /v2/namespaces/{ns}/repositories/{repo}/derived", h.apiDerived)
	hub("GET /v2/repositories/{ns}", h.apiListRepos)
	hub("GET /v2/repositories/{ns}/{repo}", h.apiGetRepo)
	hub("DELETE /v2/repositories/{ns}/{repo}", h.apiDeleteRepo)
	hub("GET /v2/repositories/{ns}/{repo}/tags", h.apiListTags)
	hub("GET /v2/repositories/{ns}/{repo}/tags/{tag}", h.apiGetTag)
	hub("DELETE /v2/repositories/{ns}/{repo}/tags/{tag}", h.apiDeleteTag)
	hub("POST /v2/namespaces/{ns}/repositories/{repo}/visibility", h.apiVisibility)
	hub("GET /v2/users", h.apiUsers)
	hub("POST /v2/users", h.apiUsers)
	hub("DELETE /v2/users/{name}", h.apiUsers)
	hub("POST /v2/users/{name}/password", h.apiUsers)
	hub("POST /v2/orgs", h.apiCreateOrg)
	hub("GET /v2/orgs/{org}/members", h.apiMembers)
	hub("POST /v2/orgs/{org}/members", h.apiMembers)
	hub("DELETE /v2/orgs/{org}/members/{user}", h.apiMembers)
	hub("POST /v2/auth/token", h.apiLogin)
	hub("POST /v2/users/login", h.apiLogin)
	hub("GET /v2/access-tokens", h.apiListTokens)
	hub("POST /v2/access-tokens", h.apiCreateToken)
	hub("GET /v2/access-tokens/{id}", h.apiGetToken)
	hub("DELETE /v2/access-tokens/{id}", h.apiRevokeToken)
	hub("GET /v2/admin/gc/runs", h.apiGCRuns)
	hub("GET /v2/admin/runs", h.apiGCRuns)
	hub("POST /v2/admin/gc/runs", h.apiStartGC)
	mux.HandleFunc("GET /mirror", h.mirrorPage)
	mux.HandleFunc("GET /v1/_ping", h.v1Ping)
	mux.HandleFunc("GET /v1/search", h.v1Search)
	mux.HandleFunc("/", h.notFound)
	return mux
}

// ServeHTTP serves r with the security headers every response carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Scripts and styles come only from this origin; no inline script, so
	// an escaped-but-missed injection still cannot run.
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// notFound answers what no route matched: JSON under /v2/, a page
// elsewhere.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	if isAPIPath(r.URL.Path) {
		writeAPIError(w, http.StatusNotFound, "object not found")
		return
	}
	c, _ := h.identify(r)
	h.showError(w, r, c, http.StatusNotFound, "There is no page here.")
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

func isAPIPath(path string) bool { return strings.HasPrefix(path, "/v2/") }

// IsHubAPIPath reports whether a /v2/ path is one of the Hub-style API's.
// The server asks only for paths the distribution API does not know, so
// a repository named like "repositories/x" still reaches the registry.
func IsHubAPIPath(path string) bool {
	for _, p := range []string{"/v2/namespaces/", "/v2/repositories/", "/v2/access-tokens", "/v2/admin/", "/v2/users", "/v2/orgs", "/v2/retention/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	path = strings.TrimSuffix(path, "/")
	return path == "/v2/auth/token" || path == "/v2/users/login"
}
