package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/replicate"
	"github.com/wharf/wharf/internal/secretkey"
)

// replicationPanel is the replication section of a namespace's page, for
// those who may change the namespace.
type replicationPanel struct {
	Namespace string
	Rules     []replicationRow
	// Action is the URL the forms post to.
	Action string
}

type replicationRow struct {
	replicate.Rule
	// Repositories is the pattern inside the namespace ("" for all).
	Repositories string
}

// namespaceReplication is the replication panel of ns, nil unless the
// caller may change ns and the database keeps rules.
func (h *Handler) namespaceReplication(ctx context.Context, c caller, ns string) (*replicationPanel, error) {
	if ok, err := h.mayManage(ctx, c, ns, h.repl != nil); err != nil || !ok {
		return nil, err
	}
	rules, err := h.repl.Rules(ctx, ns)
	if err != nil {
		return nil, err
	}
	p := &replicationPanel{Namespace: ns, Action: "/u/" + ns}
	for i := range rules {
		p.Rules = append(p.Rules, replicationRow{Rule: rules[i], Repositories: toHubRule(&rules[i]).Repositories})
	}
	return p, nil
}

// replicationForm applies a replication form of the namespace page (the
// caller's rights checked) and goes back to the panel.
func (h *Handler) replicationForm(w http.ResponseWriter, r *http.Request, c caller, ns string) {
	ctx := actingAs(r.Context(), c)
	id, _ := strconv.ParseInt(r.PostFormValue("rule"), 10, 64)
	var err error
	switch op := r.PostFormValue("op"); {
	case h.repl == nil:
		err = fmt.Errorf("this registry keeps no replication rules: %w", errBadForm)
	case op == "replication-add":
		_, err = h.repl.CreateRule(ctx, ns, replicate.RuleSpec{URL: r.PostFormValue("url"),
			Repositories: r.PostFormValue("repositories"), DestPrefix: r.PostFormValue("dest_prefix"),
			Username: r.PostFormValue("username"), Password: r.PostFormValue("password")}, c.sub.User)
	case op == "replication-rm":
		err = h.repl.DeleteRule(ctx, ns, id)
	case op == "replication-reconcile":
		err = h.repl.Reconcile(ctx, ns, id)
	default:
		err = fmt.Errorf("unknown form %q: %w", op, errBadForm)
	}
	switch {
	case err == nil:
		http.Redirect(w, r, "/u/"+ns+"?flash=replicate-changed#replication-h", http.StatusSeeOther)
	case errors.Is(err, replicate.ErrInvalid), errors.Is(err, errBadForm):
		h.showError(w, r, c, http.StatusBadRequest, err.Error())
	case errors.Is(err, secretkey.ErrNoKey):
		h.showError(w, r, c, http.StatusBadRequest, "No secret key to store the password with: set secret_key (WHARF_SECRET_KEY) on every replica.")
	case errors.Is(err, replicate.ErrNotFound):
		h.showError(w, r, c, http.StatusNotFound, "No such replication rule here.")
	case errors.Is(err, replicate.ErrBusy):
		h.showError(w, r, c, http.StatusTooManyRequests, "Too many reconciles are waiting; try again later.")
	default:
		h.internal(w, r, c, err)
	}
}

// mayManage reports whether a namespace page shows c a settings panel
// (webhooks, replication): the registry keeps what it manages, and c may
// change ns.
func (h *Handler) mayManage(ctx context.Context, c caller, ns string, kept bool) (bool, error) {
	if !kept {
		return false, nil
	}
	return h.can(ctx, c, ns+"/*", auth.ActionDelete)
}
