package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// policyPanel is the policies section of a repository's settings and of a
// namespace's page.
type policyPanel struct {
	Pattern string
	Rows    []policyRow
	// CanEdit: the viewer owns the repository or namespace (or is an
	// admin), as for visibility.
	CanEdit bool
	// Action is the URL the forms post to.
	Action string
}

type policyRow struct {
	Key, Value, Values, Doc string
	Choices                 []string
	// Pattern set the value ("" for the default); Here: it is Pattern
	// itself, so the value can be removed here.
	Pattern string
	Here    bool
	SetBy   string
	SetAt   time.Time
}

// policies builds the panel of pattern, nil if the store keeps none.
func (h *Handler) policies(ctx context.Context, pattern string, canEdit bool, action string) (*policyPanel, error) {
	pol := h.reg.Policies()
	if pol == nil {
		return nil, nil
	}
	eff, err := pol.Effective(ctx, pattern)
	if err != nil {
		return nil, err
	}
	keys := map[string]registry.PolicyKey{}
	for _, k := range registry.PolicyKeys() {
		keys[k.Name] = k
	}
	p := &policyPanel{Pattern: pattern, CanEdit: canEdit, Action: action}
	for _, s := range eff {
		k := keys[s.Key]
		p.Rows = append(p.Rows, policyRow{Key: s.Key, Value: s.Value, Values: k.Values, Doc: k.Doc, Choices: k.Choices,
			Pattern: s.Pattern, Here: s.Pattern == pattern, SetBy: s.SetBy, SetAt: s.SetAt})
	}
	return p, nil
}

// applyPolicyForm applies a policy form (op policy-set or policy-rm) to
// pattern; the caller has checked the rights.
func (h *Handler) applyPolicyForm(ctx context.Context, r *http.Request, pattern string) error {
	pol := h.reg.Policies()
	if pol == nil {
		return fmt.Errorf("this registry keeps no policies: %w", errBadForm)
	}
	key := r.PostFormValue("key")
	if r.PostFormValue("op") == "policy-rm" {
		return pol.Remove(ctx, pattern, key)
	}
	return pol.Set(ctx, pattern, map[string]string{key: r.PostFormValue("value")})
}

// policyFormError reports whether err is the user's to fix, and says how.
func policyFormError(err error) (string, bool) {
	var de *registry.Error
	if (errors.Is(err, registry.ErrPolicyInvalid) || errors.Is(err, registry.ErrPolicyUnknown)) && errors.As(err, &de) {
		return de.Message, true
	}
	return "", false
}

// namespaceAction serves the forms of /u/NAME: the namespace's policies
// and webhooks.
func (h *Handler) namespaceAction(w http.ResponseWriter, r *http.Request) {
	c, err := h.identify(r)
	if err != nil || !checkCSRF(r, c) {
		h.showError(w, r, c, http.StatusForbidden, "The form expired or came from another site; reload the page and try again.")
		return
	}
	ns := r.PathValue("name")
	if !h.open() && !auth.ValidName(ns) {
		h.showError(w, r, c, http.StatusNotFound, "No such user or organisation.")
		return
	}
	pattern := ns + "/*"
	ctx := actingAs(r.Context(), c)
	if op := r.PostFormValue("op"); (op == "member-set" || op == "member-rm") && !h.open() {
		err := h.memberForm(ctx, c, r, ns)
		if errors.Is(err, auth.ErrForbidden) {
			h.denied(ctx, r, c, pattern, "manage members")
			h.showError(w, r, c, http.StatusForbidden, "Only the organisation's admins manage its members.")
			return
		}
		if msg, ok := teamFormError(err); ok {
			h.showError(w, r, c, http.StatusBadRequest, msg)
			return
		}
		if err != nil {
			h.internal(w, r, c, err)
			return
		}
		http.Redirect(w, r, "/u/"+ns+"?flash=members-changed#members-h", http.StatusSeeOther)
		return
	}
	if ok, err := h.can(ctx, c, pattern, auth.ActionDelete); err != nil {
		h.internal(w, r, c, err)
		return
	} else if !ok {
		h.denied(ctx, r, c, pattern, auth.ActionDelete)
		h.showError(w, r, c, http.StatusForbidden, "Only the namespace's owners may change its policies.")
		return
	}
	if strings.HasPrefix(r.PostFormValue("op"), "webhook-") {
		h.webhookForm(w, r, c, ns)
		return
	}
	if strings.HasPrefix(r.PostFormValue("op"), "replication-") {
		h.replicationForm(w, r, c, ns)
		return
	}
	if r.PostFormValue("op") == "retention-run" {
		if _, err := h.reg.RunRetention(ctx, pattern, "manual"); err != nil {
			h.internal(w, r, c, err)
			return
		}
		http.Redirect(w, r, "/u/"+ns+"?flash=retention-ran#policies-h", http.StatusSeeOther)
		return
	}
	err = h.applyPolicyForm(ctx, r, pattern)
	if msg, ok := policyFormError(err); ok {
		h.showError(w, r, c, http.StatusBadRequest, msg)
		return
	}
	if errors.Is(err, errBadForm) {
		h.showError(w, r, c, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	http.Redirect(w, r, "/u/"+ns+"?flash=policy-changed#policies-h", http.StatusSeeOther)
}
