package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
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
	if !checkCSRF(r) {
		data.Error = "The form expired; please try again."
		h.show(w, r, caller{}, http.StatusForbidden, "signin", "Sign in", data)
		return
	}
	ctx := r.Context()
	sub, err := h.auth.Authenticate(ctx, data.User, r.PostFormValue("password"), clientAddr(r))
	if err == nil && sub.TokenID != "" {
		// A session is the account's, not an access token's: signing in
		// with a token would outlive its revocation as a session.
		err = auth.ErrUnauthenticated
	}
	switch {
	case errors.Is(err, auth.ErrRateLimited):
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
	if !checkCSRF(r) {
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
// (sign-in redirect, or an explanation when the registry is open).
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request) (caller, bool) {
	c, err := h.identify(r)
	switch {
	case h.open():
		h.showError(w, r, c, http.StatusNotFound, "This registry runs without accounts (--auth=none): there is nothing to set.")
		return c, false
	case err != nil || c.sub.Anonymous():
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/signin?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		} else {
			h.showError(w, r, c, http.StatusUnauthorized, "Sign in first.")
		}
		return c, false
	case r.Method != http.MethodGet && !checkCSRF(r):
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
	if _, err := h.auth.Authenticate(ctx, c.sub.User, r.PostFormValue("current"), clientAddr(r)); err != nil {
		h.renderAccount(w, r, c, http.StatusForbidden, accountData{Error: "The current password is wrong."})
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
