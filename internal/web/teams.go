package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/wharf/wharf/internal/auth"
)

// The team pages: /admin, where registry administrators create and
// remove users, reset passwords and create organisations, and the member
// forms of an organisation's page (/u/ORG), for its admins. Both change
// accounts through auth.Service, which writes the audit lines.

type adminData struct {
	Users []auth.User
	// MinPassword is the shortest password accepted, for the forms.
	MinPassword int
}

// adminPage serves GET /admin.
func (h *Handler) adminPage(w http.ResponseWriter, r *http.Request) {
	c, ok := h.adminCaller(w, r)
	if !ok {
		return
	}
	users, err := h.auth.ListUsers(r.Context())
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	h.show(w, r, c, http.StatusOK, "admin", "Users and organisations", adminData{Users: users, MinPassword: auth.MinPasswordLen})
}

// adminCaller lets only a registry administrator through.
func (h *Handler) adminCaller(w http.ResponseWriter, r *http.Request) (caller, bool) {
	c, err := h.identify(r)
	switch {
	case err != nil:
		h.showError(w, r, caller{}, http.StatusUnauthorized, "Your credentials were not accepted.")
		return c, false
	case h.open():
		h.showError(w, r, c, http.StatusNotFound, "This registry runs without accounts.")
		return c, false
	case c.sub.Anonymous():
		http.Redirect(w, r, "/signin?next=/admin", http.StatusSeeOther)
		return c, false
	case !c.sub.Admin:
		h.showError(w, r, c, http.StatusForbidden, "Only administrators manage users and organisations.")
		return c, false
	}
	return c, true
}

// adminAction serves the forms of /admin.
func (h *Handler) adminAction(w http.ResponseWriter, r *http.Request) {
	c, ok := h.adminCaller(w, r)
	if !ok {
		return
	}
	if !checkCSRF(r, c) {
		h.showError(w, r, c, http.StatusForbidden, "The form expired or came from another site; reload the page and try again.")
		return
	}
	ctx := actingAs(r.Context(), c)
	name := r.PostFormValue("name")
	var err error
	flash := ""
	switch r.PostFormValue("op") {
	case "user-add":
		err, flash = h.auth.AddUser(ctx, name, r.PostFormValue("password"), r.PostFormValue("admin") == "on"), "user-added"
	case "user-rm":
		if name == c.sub.User {
			err = errRemoveSelf
		} else {
			err, flash = h.auth.RemoveUser(ctx, name), "user-removed"
		}
	case "user-password":
		err, flash = h.auth.SetPassword(ctx, name, r.PostFormValue("password")), "password-reset"
	case "org-add":
		err, flash = h.auth.AddOrg(ctx, name), "org-added"
		if err == nil {
			http.Redirect(w, r, "/u/"+url.PathEscape(name)+"?flash=org-added", http.StatusSeeOther)
			return
		}
	default:
		err = errBadForm
	}
	if msg, ok := teamFormError(err); ok {
		h.showError(w, r, c, http.StatusBadRequest, msg)
		return
	}
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	http.Redirect(w, r, "/admin?flash="+flash, http.StatusSeeOther)
}

// errRemoveSelf keeps an administrator from locking themselves out.
var errRemoveSelf = errors.New("an administrator removing their own account")

// teamFormError reports whether err is the user's to fix, and says how.
func teamFormError(err error) (string, bool) {
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, errBadForm):
		return "This form asks for nothing this page does.", true
	case errors.Is(err, auth.ErrExists):
		return "A user or organisation of that name exists already.", true
	case errors.Is(err, auth.ErrNotFound):
		return "No such user or organisation.", true
	case errors.Is(err, auth.ErrInvalid):
		return "Not accepted: " + err.Error(), true
	case errors.Is(err, auth.ErrForbidden):
		return "Only the organisation's admins manage its members.", true
	case errors.Is(err, errRemoveSelf):
		return "You cannot remove your own account: another administrator must.", true
	}
	return "", false
}

// memberForm applies a member form (op member-set or member-rm) of
// organisation org's page.
func (h *Handler) memberForm(ctx context.Context, c caller, r *http.Request, org string) error {
	if may, err := h.auth.MayManageOrg(ctx, c.sub, org); err != nil {
		return err
	} else if !may {
		return auth.ErrForbidden
	}
	user := r.PostFormValue("user")
	if r.PostFormValue("op") == "member-rm" {
		return h.auth.RemoveMember(ctx, org, user)
	}
	return h.auth.AddMember(ctx, org, user, auth.Role(r.PostFormValue("role")))
}
