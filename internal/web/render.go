package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/microcosm-cc/bluemonday"
	"github.com/opencontainers/go-digest"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/wharf/wharf/internal/humantime"
)

// pages holds one template set per page, each the layout plus the page.
type pages struct {
	sets     map[string]*template.Template
	markdown goldmark.Markdown
	policy   *bluemonday.Policy
}

var pageNames = []string{"explore", "outdated", "repo", "tags", "image", "repo_settings", "namespace", "signin", "account", "error", "admin", "admin_gc", "history", "mirror"}

func mustParsePages() *pages {
	p := &pages{
		sets: map[string]*template.Template{},
		// goldmark never passes raw HTML through (no WithUnsafe); bluemonday
		// sanitises what it renders all the same, links included.
		markdown: goldmark.New(goldmark.WithExtensions(extension.GFM)),
		policy:   bluemonday.UGCPolicy(),
	}
	funcs := template.FuncMap{
		"ago":      ago,
		"exact":    func(t time.Time) string { return t.UTC().Format("Jan 2, 2006 at 15:04:05 UTC") },
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"size":     humanSize,
		"short":    shortDigest,
		"join":     strings.Join,
		"markdown": p.render,
		"add":      func(a, b int) int { return a + b },
		"percent":  func(f float64) float64 { return 100 * f },
		// panel passes a section's data with the page's view (its CSRF
		// token) to a partial.
		"panel":   func(v, p any) map[string]any { return map[string]any{"V": v, "P": p} },
		"query":   withQuery,
		"pretty":  prettyJSON,
		"tagURL":  func(repo, tag string) string { return repoURL(repo, viewTag, tag) },
		"repoURL": func(repo string) string { return repoURL(repo, viewOverview, "") },
		// A usage bar turns amber past 80% of the quota, red past 95%.
		"quotaLow":  func(q int64) int64 { return q / 10 * 8 },
		"quotaHigh": func(q int64) int64 { return q / 100 * 95 },
	}
	for _, name := range pageNames {
		t := template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html"))
		p.sets[name] = t
	}
	return p
}

// render turns a readme into sanitised HTML.
func (p *pages) render(src string) template.HTML {
	var buf bytes.Buffer
	if err := p.markdown.Convert([]byte(src), &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(p.policy.SanitizeBytes(buf.Bytes())) //nolint:gosec // sanitised above
}

// view is what every page template gets.
type view struct {
	Title    string
	User     string
	Admin    bool
	Open     bool
	CSRF     string
	Host     string
	Path     string
	Flash    string
	Error    string
	Data     any
	SignedIn bool
	// Mirror is true when the registry mirrors upstreams (a nav link).
	Mirror bool
}

// flashes are the notices a redirect may ask a page to show. Only these
// fixed texts are shown, so that a link cannot put words on the page.
var flashes = map[string]string{
	"tag-deleted":        "The tag was deleted.",
	"repo-deleted":       "The repository was deleted.",
	"visibility-changed": "The visibility was changed.",
	"policy-changed":     "The policy was changed.",
	"webhook-changed":    "The webhook was changed.",
	"replicate-changed":  "The replication rules were changed.",
	"tag-restored":       "The tag was restored.",
	"password-changed":   "Your password was changed; other sessions were signed out.",
	"token-revoked":      "The token was revoked.",
	"gc-started":         "A garbage collection started; reload to see its report.",
	"retention-ran":      "Retention ran; its report is in the list of runs.",
	"user-added":         "The user was created.",
	"user-removed":       "The user was removed.",
	"password-reset":     "The password was reset; the user's other sessions were signed out.",
	"org-added":          "The organisation was created.",
	"members-changed":    "The members were changed.",
}

// show renders page name with data.
func (h *Handler) show(w http.ResponseWriter, r *http.Request, c caller, status int, name, title string, data any) {
	v := view{
		Title: title, User: c.sub.User, Admin: c.sub.Admin, Open: h.open(), SignedIn: c.how == viaCookie,
		CSRF: csrfToken(w, r, c), Host: r.Host, Path: r.URL.Path, Data: data,
		Flash: flashes[r.URL.Query().Get("flash")], Mirror: h.mirror != nil,
	}
	if c.sub.User != "" {
		v.SignedIn = true
	}
	var buf bytes.Buffer
	if err := h.pages.sets[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.ErrorContext(r.Context(), "page render failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// showError renders the error page.
func (h *Handler) showError(w http.ResponseWriter, r *http.Request, c caller, status int, msg string) {
	h.show(w, r, c, status, "error", http.StatusText(status), msg)
}

// ago says how long ago t was, as Docker Hub does ("3 days ago"); the
// page's script keeps it current from the <time> element's datetime.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return humantime.Ago(time.Now(), t, "less than a minute ago")
}

// humanSize prints bytes in decimal units, as docker does.
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		f /= unit
		if f < unit {
			return strconv.FormatFloat(f, 'f', 2, 64) + " " + u
		}
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + " PB"
}

// shortDigest is the first 12 hex digits, as docker prints image ids.
func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// withQuery returns the current URL with one query parameter replaced.
func withQuery(u *url.URL, key, value string) string {
	q := u.Query()
	q.Set(key, value)
	return u.Path + "?" + q.Encode()
}

// prettyJSON indents a manifest for reading; bytes that are not JSON are
// shown as they are.
func prettyJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}
