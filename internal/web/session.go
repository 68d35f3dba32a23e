package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/forwarded"
	"github.com/wharf/wharf/internal/registry"
)

// Cookie names. The session cookie holds an auth refresh token (so a
// session can be revoked, and dies with a password change). A signed-in
// browser's CSRF token is derived from it (sessionCSRF); the CSRF cookie
// serves only callers without a session, i.e. the sign-in form. Over TLS
// both names take the __Host- prefix (cookieName).
const (
	sessionCookie = "wharf_session"
	csrfCookie    = "wharf_csrf"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// hostPrefix makes a browser refuse the cookie unless it is Secure, has
// Path=/ and no Domain, and was set over HTTPS: a sibling subdomain or
// a plain-HTTP response (a network attacker's) cannot plant or replace
// it.
const hostPrefix = "__Host-"

// cookieName is the name of cookie name for r: __Host- prefixed over TLS.
// Over TLS the bare names are ignored, since anyone may have set them.
func cookieName(r *http.Request, name string) string {
	if forwarded.Secure(r) {
		return hostPrefix + name
	}
	return name
}

// hubAPI is the resource whose grant marks a bearer token as issued by
// POST /v2/auth/token for this API: tokens that /token hands to docker
// carry only repository scopes and must not act as the whole account
// here. The grant's one action is "*" for a password login, or the scope
// of the access token the caller logged in with, which keeps capping it.
var hubAPI = auth.Resource{Type: "hub", Name: "api"}

// hubGrant is the grant a Hub API bearer token carries for sub.
func hubGrant(sub auth.Subject) auth.Access {
	action := auth.ActionAll
	if sub.Scope != "" {
		action = string(sub.Scope)
	}
	return auth.Access{Resource: hubAPI, Actions: []string{action}}
}

// hubSubject returns the subject a Hub API bearer token stands for.
func (h *Handler) hubSubject(ctx context.Context, claims *auth.Claims) (auth.Subject, error) {
	for _, a := range claims.Access {
		if a.Resource != hubAPI || len(a.Actions) != 1 {
			continue
		}
		sub, err := h.auth.SubjectFor(ctx, claims.Subject)
		if err != nil {
			return sub, err
		}
		if a.Actions[0] != auth.ActionAll {
			sub.Scope = auth.TokenScope(a.Actions[0])
		}
		return sub, nil
	}
	return auth.Subject{}, auth.ErrInvalidToken
}

// how says how a request identified itself.
type how int

const (
	viaNone how = iota
	viaCookie
	viaBasic
	viaBearer
)

// caller is who is asking.
type caller struct {
	sub auth.Subject
	how how
	// csrf is the token unsafe requests made with a session cookie must
	// repeat (sessionCSRF); empty for other callers.
	csrf string
}

// identify returns the caller of r: an Authorization header wins over a
// session cookie. Wrong credentials are an error, never anonymous; a stale
// session cookie is simply anonymous (the browser is asked to sign in).
func (h *Handler) identify(r *http.Request) (caller, error) {
	if h.open() {
		return caller{}, nil
	}
	ctx := r.Context()
	hdr := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(hdr, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, secret, ok := r.BasicAuth()
		if !ok {
			return caller{}, auth.ErrUnauthenticated
		}
		sub, err := h.auth.Authenticate(ctx, user, secret, forwarded.ClientAddr(r))
		return caller{sub: sub, how: viaBasic}, err
	case strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "JWT"):
		claims, err := h.auth.VerifyBearer(ctx, h.tokens, strings.TrimSpace(value))
		if err != nil {
			return caller{}, err
		}
		sub, err := h.hubSubject(ctx, claims)
		return caller{sub: sub, how: viaBearer}, err
	case hdr != "":
		return caller{}, auth.ErrUnauthenticated
	}
	c, err := r.Cookie(cookieName(r, sessionCookie))
	if err != nil || c.Value == "" {
		return caller{}, nil
	}
	sub, err := h.auth.Session(ctx, c.Value)
	if errors.Is(err, auth.ErrUnauthenticated) {
		return caller{}, nil
	}
	if err != nil {
		return caller{}, err
	}
	return caller{sub: sub, how: viaCookie, csrf: sessionCSRF(c.Value)}, nil
}

// session reports whether c is a signed-in browser: a web session, which
// only a password sign-in starts, with no scope cap. Only such a caller
// manages the account (password, access tokens) from the pages.
func (c caller) session() bool {
	return c.how == viaCookie && !c.sub.Anonymous() && c.sub.Scope == "" && c.csrf != ""
}

// can reports whether the caller may do action on repo.
func (h *Handler) can(ctx context.Context, c caller, repo, action string) (bool, error) {
	if h.open() {
		return true, nil
	}
	// Can, not Authorize: a page asks about actions the viewer never
	// tries, and must not fill the audit log with refusals (denied logs
	// the requests that are refused).
	return h.auth.Can(ctx, c.sub, auth.Resource{Type: auth.TypeRepository, Name: repo}, action)
}

// denied is the audit line for a change the caller was refused.
func (h *Handler) denied(ctx context.Context, r *http.Request, c caller, repo, action string) {
	if c.sub.Anonymous() {
		return
	}
	need := auth.Access{Resource: auth.Resource{Type: auth.TypeRepository, Name: repo}, Actions: []string{action}}
	h.log.InfoContext(ctx, "access denied", "user", c.sub.User, "method", r.Method, "path", r.URL.Path, "needs", []string{need.String()})
}

// visibleTo is the listing filter for the caller: nil (everything) when
// the registry is open or the caller is an admin; else the public
// repositories and the namespaces the caller owns or belongs to.
func (h *Handler) visibleTo(ctx context.Context, c caller) (*registry.VisibleTo, error) {
	if h.open() || c.sub.Admin {
		return nil, nil
	}
	// Like auth.Service.Visibility: a repository without a record is private.
	v := &registry.VisibleTo{Default: string(auth.Private)}
	if c.sub.Anonymous() {
		return v, nil
	}
	v.Namespaces = []string{c.sub.User}
	members, err := h.auth.Memberships(ctx, c.sub.User)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		v.Namespaces = append(v.Namespaces, m.Org)
	}
	return v, nil
}

// actingAs returns ctx naming the caller as the acting account, so that
// what the request changes is logged against it.
func actingAs(ctx context.Context, c caller) context.Context {
	return registry.WithActor(auth.WithSubject(ctx, c.sub), c.sub.User)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionCSRF is the CSRF token of a session: an HMAC of a constant
// keyed with the session secret. The secret lives in an HttpOnly cookie
// that no script and no other site can read, so the token cannot be
// guessed or planted; it needs no server key, survives restarts and is
// the same on every replica, and dies with the session.
func sessionCSRF(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("wharf web csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken returns the CSRF token the page's forms carry: the session's
// for a signed-in browser, else the CSRF cookie's value (double submit),
// setting the cookie first if there is none.
func csrfToken(w http.ResponseWriter, r *http.Request, c caller) string {
	if c.csrf != "" {
		return c.csrf
	}
	name := cookieName(r, csrfCookie)
	if ck, err := r.Cookie(name); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: name, Value: tok, Path: "/", HttpOnly: true, Secure: forwarded.Secure(r), SameSite: http.SameSiteLaxMode})
	// Later reads in this request (the form being rendered) see it too.
	r.AddCookie(&http.Cookie{Name: name, Value: tok})
	return tok
}

// checkCSRF reports whether an unsafe request from c repeats its CSRF
// token in the form field or the X-CSRF-Token header. A signed-in
// browser must repeat its session's token. A caller without credentials
// (the sign-in form, or anyone on an open registry) may double-submit the
// CSRF cookie: forging one then gains at most a sign-in to the forger's
// own account. Callers with an Authorization header never pass: forms
// are for browsers, and scripts use the API, where a header is proof
// enough.
func checkCSRF(r *http.Request, c caller) bool {
	var want string
	switch c.how {
	case viaCookie:
		want = c.csrf
	case viaNone:
		ck, err := r.Cookie(cookieName(r, csrfCookie))
		if err != nil {
			return false
		}
		want = ck.Value
	}
	if len(want) < 32 {
		return false
	}
	sent := r.Header.Get(csrfHeader)
	if sent == "" {
		sent = r.PostFormValue(csrfField)
	}
	return subtle.ConstantTimeCompare([]byte(sent), []byte(want)) == 1
}

func setSession(w http.ResponseWriter, r *http.Request, secret string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, sessionCookie), Value: secret, Path: "/", HttpOnly: true,
		Secure: forwarded.Secure(r), SameSite: http.SameSiteLaxMode, MaxAge: 90 * 24 * 3600})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, sessionCookie), Value: "", Path: "/", HttpOnly: true,
		Secure: forwarded.Secure(r), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}
