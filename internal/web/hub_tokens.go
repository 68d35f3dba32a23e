package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

// apiAccount returns a signed-in API caller, or answers 401.
func (h *Handler) apiAccount(w http.ResponseWriter, r *http.Request) (caller, bool) {
	if h.open() {
		writeAPIError(w, http.StatusNotFound, "this registry runs without accounts")
		return caller{}, false
	}
	c, ok := h.apiCaller(w, r)
	if !ok {
		return c, false
	}
	if c.sub.Anonymous() {
		writeAPIError(w, http.StatusUnauthorized, "authentication required")
		return c, false
	}
	if c.sub.Scope != "" {
		// An access token may not mint or list its siblings, as on Hub,
		// however it reached here: Basic, a bearer from a login with it, or
		// a refresh token derived from it (which is no session anyway).
		writeAPIError(w, http.StatusForbidden, "access tokens cannot manage access tokens")
		return c, false
	}
	return c, true
}

// apiListTokens is GET /v2/access-tokens.
func (h *Handler) apiListTokens(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccount(w, r)
	if !ok {
		return
	}
	page, size, ok := hubPaging(w, r)
	if !ok {
		return
	}
	toks, err := h.auth.ListPATs(r.Context(), c.sub.User)
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	// Tokens are few per user; the list is paged after reading it whole.
	results := []hubToken{}
	for i := (page - 1) * size; i < len(toks) && i < page*size; i++ {
		results = append(results, hubTokenOf(&toks[i], ""))
	}
	writeJSON(w, http.StatusOK, envelope(r, page, size, len(toks), results))
}

// apiCreateToken is POST /v2/access-tokens {"token_label","scopes",
// "expires_at"}: the answer carries the secret, once.
func (h *Handler) apiCreateToken(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccount(w, r)
	if !ok {
		return
	}
	var body struct {
		TokenLabel string    `json:"token_label"`
		Scopes     []string  `json:"scopes"`
		ExpiresAt  time.Time `json:"expires_at"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody)).Decode(&body); err != nil {
		writeAPIError(w, http.StatusBadRequest, "the body must be a JSON object")
		return
	}
	scope := auth.ScopeRead
	if len(body.Scopes) > 0 {
		s, known := hubScopes[body.Scopes[0]]
		if !known || len(body.Scopes) > 1 {
			writeAPIError(w, http.StatusBadRequest, "scopes: one of repo:admin, repo:write, repo:read, repo:public_read")
			return
		}
		scope = s
	}
	secret, tok, err := h.auth.CreatePAT(r.Context(), c.sub.User, body.TokenLabel, scope, body.ExpiresAt)
	if errors.Is(err, auth.ErrInvalid) {
		writeAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, hubTokenOf(tok, secret))
}

// apiGetToken is GET /v2/access-tokens/{id}.
func (h *Handler) apiGetToken(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccount(w, r)
	if !ok {
		return
	}
	toks, err := h.auth.ListPATs(r.Context(), c.sub.User)
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	for i := range toks {
		if toks[i].ID == r.PathValue("id") {
			writeJSON(w, http.StatusOK, hubTokenOf(&toks[i], ""))
			return
		}
	}
	writeAPIError(w, http.StatusNotFound, "object not found")
}

// apiRevokeToken is DELETE /v2/access-tokens/{id} (204).
func (h *Handler) apiRevokeToken(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccount(w, r)
	if !ok {
		return
	}
	err := h.auth.RevokePAT(r.Context(), c.sub.User, r.PathValue("id"))
	if errors.Is(err, auth.ErrNotFound) {
		writeAPIError(w, http.StatusNotFound, "object not found")
		return
	}
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
