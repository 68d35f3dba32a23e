package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// Cookie names. The session cookie holds an auth refresh token (so a
// session can be revoked, and dies with a password change); the CSRF
// cookie holds a random value every form and unsafe API call repeats.
const (
	sessionCookie = "wharf_session"
	csrfCookie    = "wharf_csrf"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

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
		sub, err := h.auth.Authenticate(ctx, user, secret, clientAddr(r))
		return caller{sub, viaBasic}, err
	case strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "JWT"):
		claims, err := h.tokens.Verify(strings.TrimSpace(value))
		if err != nil {
			return caller{}, err
		}
		sub, err := h.hubSubject(ctx, claims)
		return caller{sub, viaBearer}, err
	case hdr != "":
		return caller{}, auth.ErrUnauthenticated
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return caller{}, nil
	}
	sub, err := h.auth.Session(ctx, c.Value)
	if errors.Is(err, auth.ErrUnauthenticated) {
		return caller{}, nil
	}
	return caller{sub, viaCookie}, err
}

// can reports whether the caller may do action on repo.
func (h *Handler) can(ctx context.Context, c caller, repo, action string) (bool, error) {
	if h.open() {
		return true, nil
	}
	granted, err := h.auth.Authorize(ctx, c.sub, auth.Resource{Type: auth.TypeRepository, Name: repo}, []string{action})
	return len(granted) == 1, err
}

// visibleTo is the listing filter for the caller: nil (everything) when
// the registry is open or the caller is an admin; else the public
// repositories and the namespaces the caller owns or belongs to.
func (h *Handler) visibleTo(ctx context.Context, c caller) (*registry.VisibleTo, error) {
	if h.open() || c.sub.Admin {
		return nil, nil
	}
	v := &registry.VisibleTo{Default: string(h.auth.DefaultVisibility())}
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

// csrfToken returns the browser's CSRF value, setting the cookie first if
// it has none. The cookie is readable by the page's script so that fetch
// calls can repeat it in a header.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	// Later reads in this request (the form being rendered) see it too.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	return tok
}

// checkCSRF reports whether an unsafe request repeats the CSRF cookie in
// its form field or header (the double-submit pattern; SameSite=Lax on
// the session cookie is the second line).
func checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	sent := r.Header.Get(csrfHeader)
	if sent == "" {
		sent = r.PostFormValue(csrfField)
	}
	return subtle.ConstantTimeCompare([]byte(sent), []byte(c.Value)) == 1
}

func setSession(w http.ResponseWriter, r *http.Request, secret string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: 90 * 24 * 3600})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// clientAddr is the peer's IP, the key failed logins are limited by.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
