package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/wharf/wharf/internal/auth"
)

// The team routes of the JSON API: /v2/users (administrators), /v2/orgs
// (administrators create organisations, an organisation's admins manage
// its members) and a repository's visibility (its owners). Changes go
// through auth.Service, as the pages' and the CLI's do, and are audited
// there.

type hubUser struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
}

type hubMember struct {
	User string `json:"user"`
	Role string `json:"role"`
}

// decodeBody reads a small JSON body into v, answering 400 if it is not.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, example string) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(v); err != nil {
		writeSpecError(w, http.StatusBadRequest, "BAD_REQUEST", "the body must be JSON, as "+example)
		return false
	}
	return true
}

// teamError answers an error of auth.Service.
func (h *Handler) teamError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, auth.ErrInvalid):
		writeSpecError(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
	case errors.Is(err, auth.ErrExists):
		writeSpecError(w, http.StatusConflict, "EXISTS", "a user or organisation of that name exists already")
	case errors.Is(err, auth.ErrNotFound):
		writeSpecError(w, http.StatusNotFound, "NOT_FOUND", "no such user or organisation")
	default:
		h.apiInternal(w, r, err)
	}
}

// apiAccountsCaller identifies the caller of a route that needs accounts,
// which an open registry has none of.
func (h *Handler) apiAccountsCaller(w http.ResponseWriter, r *http.Request) (caller, bool) {
	if h.open() {
		writeSpecError(w, http.StatusNotFound, "UNSUPPORTED", "this registry runs without accounts")
		return caller{}, false
	}
	return h.apiCaller(w, r)
}

// apiAccountsAdmin lets only a registry administrator through, on a
// registry with accounts.
func (h *Handler) apiAccountsAdmin(w http.ResponseWriter, r *http.Request) (caller, bool) {
	c, ok := h.apiAccountsCaller(w, r)
	switch {
	case !ok:
		return c, false
	case c.sub.Anonymous():
		writeSpecError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return c, false
	case !c.sub.Admin:
		h.denied(r.Context(), r, c, "*", "manage accounts")
		writeSpecError(w, http.StatusForbidden, "DENIED", "only administrators manage users and organisations")
		return c, false
	}
	return c, true
}

// apiUsers serves GET and POST /v2/users, DELETE /v2/users/{name} and
// POST /v2/users/{name}/password.
func (h *Handler) apiUsers(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccountsAdmin(w, r)
	if !ok {
		return
	}
	ctx := actingAs(r.Context(), c)
	name := r.PathValue("name")
	var err error
	switch {
	case r.Method == http.MethodGet:
		users, err := h.auth.ListUsers(ctx)
		if err != nil {
			h.apiInternal(w, r, err)
			return
		}
		out := make([]hubUser, 0, len(users))
		for _, u := range users {
			out = append(out, hubUser{Name: u.Name, Admin: u.Admin})
		}
		writeJSON(w, http.StatusOK, map[string]any{"users": out})
		return
	case r.Method == http.MethodPost && name == "":
		var body struct {
			Name, Password string
			Admin          bool
		}
		if !decodeBody(w, r, &body, `{"name": "bob", "password": "…", "admin": false}`) {
			return
		}
		if err = h.auth.AddUser(ctx, body.Name, body.Password, body.Admin); err == nil {
			writeJSON(w, http.StatusCreated, hubUser{Name: body.Name, Admin: body.Admin})
			return
		}
	case r.Method == http.MethodPost:
		var body struct{ Password string }
		if !decodeBody(w, r, &body, `{"password": "…"}`) {
			return
		}
		err = h.auth.SetPassword(ctx, name, body.Password)
	case name == c.sub.User:
		writeSpecError(w, http.StatusBadRequest, "BAD_REQUEST", "an administrator cannot remove their own account")
		return
	default:
		err = h.auth.RemoveUser(ctx, name)
	}
	if err != nil {
		h.teamError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiCreateOrg serves POST /v2/orgs.
func (h *Handler) apiCreateOrg(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccountsAdmin(w, r)
	if !ok {
		return
	}
	var body struct{ Name string }
	if !decodeBody(w, r, &body, `{"name": "acme"}`) {
		return
	}
	if err := h.auth.AddOrg(actingAs(r.Context(), c), body.Name); err != nil {
		h.teamError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"name": body.Name})
}

// apiMembers serves GET and POST /v2/orgs/{org}/members and DELETE
// /v2/orgs/{org}/members/{user}, for the organisation's admins.
func (h *Handler) apiMembers(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccountsCaller(w, r)
	if !ok {
		return
	}
	ctx := actingAs(r.Context(), c)
	org := r.PathValue("org")
	if isOrg, err := h.auth.IsOrg(ctx, org); err != nil {
		h.apiInternal(w, r, err)
		return
	} else if !isOrg {
		writeSpecError(w, http.StatusNotFound, "NOT_FOUND", "no such organisation")
		return
	}
	if may, err := h.auth.MayManageOrg(ctx, c.sub, org); err != nil {
		h.apiInternal(w, r, err)
		return
	} else if !may && c.sub.Anonymous() {
		writeSpecError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	} else if !may {
		h.denied(ctx, r, c, org+"/*", "manage members")
		writeSpecError(w, http.StatusForbidden, "DENIED", "only the organisation's admins manage its members")
		return
	}
	var err error
	switch r.Method {
	case http.MethodPost:
		var body hubMember
		if !decodeBody(w, r, &body, `{"user": "bob", "role": "write"}`) {
			return
		}
		err = h.auth.AddMember(ctx, org, body.User, auth.Role(body.Role))
	case http.MethodDelete:
		err = h.auth.RemoveMember(ctx, org, r.PathValue("user"))
	}
	if err != nil {
		h.teamError(w, r, err)
		return
	}
	members, err := h.auth.ListMembers(ctx, org)
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	out := make([]hubMember, 0, len(members))
	for _, m := range members {
		out = append(out, hubMember{User: m.User, Role: string(m.Role)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"org": org, "members": out})
}

// apiVisibility serves POST …/repositories/{repo}/visibility, for the
// repository's owners (delete rights, as on its settings page).
func (h *Handler) apiVisibility(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAccountsCaller(w, r)
	if !ok {
		return
	}
	name := repoName(r)
	if !h.apiRepoAccess(w, r, c, name, auth.ActionDelete) {
		return
	}
	var body struct{ Visibility string }
	if !decodeBody(w, r, &body, `{"visibility": "public"}`) {
		return
	}
	if err := h.auth.SetVisibility(actingAs(r.Context(), c), name, auth.Visibility(body.Visibility)); err != nil {
		h.teamError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"repository": name, "visibility": body.Visibility})
}
