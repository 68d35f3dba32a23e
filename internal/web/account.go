package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/forwarded"
)

// safeNext keeps a post-sign-in redirect on this site: a path that
// starts with exactly one "/", with no scheme or host, and no whitespace,
// control character or backslash, raw or percent-encoded. Browsers drop
// tabs and newlines from URLs and read "\" as "/", so "/\t/evil.example"
// or "/\\evil.example" would leave the site as "//evil.example".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.ContainsFunc(next, unsafeInNext) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") ||
		strings.HasPrefix(u.RawPath, "//") || strings.ContainsFunc(u.Path, unsafeInNext) {
		return "/"
	}
	return next
}

func unsafeInNext(r rune) bool {
	return r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
}

type signinData struct {
	Next, User, Error string
}

func (h *Handler) signinForm(w http.ResponseWriter, r *http.Request) {
	c, _ := h.identify(r)
	if h.open() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	h.show(w, r, c, http.StatusOK, "signin", "Sign in", signinData{Next: safeNext(r.URL.Query().Get("next"))})
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	if h.open() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	data := signinData{Next: safeNext(r.PostFormValue("next")), User: r.PostFormValue("username")}
	// The form carries the token of whoever loaded it: the CSRF cookie's,
	// or an existing session's.
	c, _ := h.identify(r)
	if !checkCSRF(r, c) {
		data.Error = "The form expired; please try again."
		h.show(w, r, c, http.StatusForbidden, "signin", "Sign in", data)
		return
	}
	ctx := r.Context()
	sub, err := h.auth.Authenticate(ctx, data.User, r.PostFormValue("password"), forwarded.ClientAddr(r))
	if err == nil && sub.TokenID != "" {
		// A session is the account's, not an access token's: signing in
		// with a token would outlive its revocation as a session.
		err = auth.ErrUnauthenticated
	}
	switch {
	case errors.Is(err, auth.ErrRateLimited):
		setRetryAfter(w, err)
		data.Error = "Too many failed attempts; wait a little and try again."
		h.show(w, r, caller{}, http.StatusTooManyRequests, "signin", "Sign in", data)
		return
	case errors.Is(err, auth.ErrUnauthenticated):
		data.Error = "Incorrect username or password."
		h.show(w, r, caller{}, http.StatusUnauthorized, "signin", "Sign in", data)
		return
	case err != nil:
		h.internal(w, r, caller{}, err)
		return
	}
	secret, err := h.auth.StartSession(ctx, sub)
	if err != nil {
		h.internal(w, r, caller{}, err)
		return
	}
	setSession(w, r, secret)
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	c, _ := h.identify(r)
	if !checkCSRF(r, c) {
		h.showError(w, r, c, http.StatusForbidden, "The form expired; reload the page and try again.")
		return
	}
	if c.how == viaCookie {
		if err := h.auth.EndSession(r.Context(), c.sub); err != nil {
			h.internal(w, r, c, err)
			return
		}
	}
	clearSession(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type accountData struct {
	Tokens []auth.Token
	// NewToken is a token just created, shown once.
	NewToken     string
	NewTokenName string
	Error        string
	Now          time.Time
}

// signedIn returns the caller of an account page, or answers the request
// (sign-in redirect, or an explanation when the registry is open). The
// account is managed from a signed-in browser session only: never with
// HTTP Basic (an access token is no password) or a bearer token, whose
// scope may be capped, and whose holder is not necessarily the owner.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request) (caller, bool) {
	c, err := h.identify(r)
	switch {
	case h.open():
		h.showError(w, r, c, http.StatusNotFound, "This registry runs without accounts (--auth=none): there is nothing to set.")
		return c, false
	case err == nil && (c.how == viaBasic || c.how == viaBearer):
		h.showError(w, r, caller{}, http.StatusForbidden, "Account settings are managed from a signed-in browser, not with an access token or API credentials.")
		return caller{}, false
	case err != nil || !c.session():
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/signin?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		} else {
			h.showError(w, r, caller{}, http.StatusUnauthorized, "Sign in first.")
		}
		return c, false
	case r.Method != http.MethodGet && !checkCSRF(r, c):
		h.showError(w, r, c, http.StatusForbidden, "The form expired; reload the page and try again.")
		return c, false
	}
	return c, true
}

func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request) {
	c, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	h.renderAccount(w, r, c, http.StatusOK, accountData{})
}

func (h *Handler) renderAccount(w http.ResponseWriter, r *http.Request, c caller, status int, data accountData) {
	toks, err := h.auth.ListPATs(r.Context(), c.sub.User)
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	data.Tokens, data.Now = toks, time.Now()
	// A page showing a secret must not be cached anywhere.
	h.show(w, r, c, status, "account", "Account settings", data)
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	c, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	// The password itself, never an access token: a token's holder must
	// not be able to take the account over.
	err := h.auth.Reauthenticate(ctx, c.sub.User, r.PostFormValue("current"), forwarded.ClientAddr(r))
	switch {
	case errors.Is(err, auth.ErrRateLimited):
		setRetryAfter(w, err)
		h.renderAccount(w, r, c, http.StatusTooManyRequests, accountData{Error: "Too many failed attempts; wait a little and try again."})
		return
	case errors.Is(err, auth.ErrUnauthenticated):
		h.renderAccount(w, r, c, http.StatusForbidden, accountData{Error: "The current password is wrong."})
		return
	case err != nil:
		h.internal(w, r, c, err)
		return
	}
	if r.PostFormValue("new") != r.PostFormValue("confirm") {
		h.renderAccount(w, r, c, http.StatusBadRequest, accountData{Error: "The new passwords differ."})
		return
	}
	if err := h.auth.SetPassword(ctx, c.sub.User, r.PostFormValue("new")); err != nil {
		if errors.Is(err, auth.ErrInvalid) {
			h.renderAccount(w, r, c, http.StatusBadRequest, accountData{Error: "The new password is too short (at least 8 characters)."})
			return
		}
		h.internal(w, r, c, err)
		return
	}
	// SetPassword revoked every refresh token, this session's too: other
	// browsers are signed out, this one gets a new session.
	secret, err := h.auth.StartSession(ctx, auth.Subject{User: c.sub.User, Admin: c.sub.Admin})
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	setSession(w, r, secret)
	http.Redirect(w, r, "/settings?flash=password-changed", http.StatusSeeOther)
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) {
	c, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	var expires time.Time
	if days := r.PostFormValue("expires"); days != "" && days != "never" {
		d, err := time.ParseDuration(days + "h")
		if err != nil {
			h.renderAccount(w, r, c, http.StatusBadRequest, accountData{Error: "Pick an expiry from the list."})
			return
		}
		expires = time.Now().Add(d * 24)
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	secret, tok, err := h.auth.CreatePAT(r.Context(), c.sub.User, name, auth.TokenScope(r.PostFormValue("scope")), expires)
	if errors.Is(err, auth.ErrInvalid) {
		h.renderAccount(w, r, c, http.StatusBadRequest, accountData{Error: "Give the token a description (up to 100 characters) and a scope."})
		return
	}
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	// The secret is shown in this response only; it is stored hashed.
	h.renderAccount(w, r, c, http.StatusOK, accountData{NewToken: secret, NewTokenName: tok.Name})
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) {
	c, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	err := h.auth.RevokePAT(r.Context(), c.sub.User, r.PathValue("id"))
	if errors.Is(err, auth.ErrNotFound) {
		h.showError(w, r, c, http.StatusNotFound, "No such token.")
		return
	}
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	http.Redirect(w, r, "/settings?flash=token-revoked", http.StatusSeeOther)
}

// setRetryAfter says when a blocked login may be tried again, as the
// registry API and the Hub API do.
func setRetryAfter(w http.ResponseWriter, err error) {
	var limited *auth.RateLimitError
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
	}
}
