package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/wharf/wharf/internal/notify"
)

// webhookPanel is the webhooks section of a namespace's page, for those
// who may change the namespace (it shows the secrets).
type webhookPanel struct {
	Namespace string
	Hooks     []webhookRow
	Formats   []string
	Events    []string
	// Action is the URL the forms post to.
	Action string
}

type webhookRow struct {
	notify.Hook
	// Repositories is the pattern inside the namespace ("" for all).
	Repositories string
	// Recent are the latest deliveries, Dead the dead letters.
	Recent, Dead []notify.Delivery
}

// webhookRows is how many recent deliveries the panel shows per hook.
const webhookRows = 5

// namespaceWebhooks is the webhooks panel of ns, nil unless the caller
// may change ns and the database keeps webhooks.
func (h *Handler) namespaceWebhooks(ctx context.Context, c caller, ns string) (*webhookPanel, error) {
	if ok, err := h.mayManage(ctx, c, ns, h.hooks != nil); err != nil || !ok {
		return nil, err
	}
	hooks, err := h.hooks.List(ctx, ns)
	if err != nil {
		return nil, err
	}
	p := &webhookPanel{Namespace: ns, Formats: notify.Formats(), Events: notify.Events(), Action: "/u/" + ns}
	for _, hk := range hooks {
		row := webhookRow{Hook: hk, Repositories: toHubHook(&hk).Repositories}
		if row.Recent, err = h.hooks.Deliveries(ctx, ns, hk.ID, "", webhookRows); err != nil {
			return nil, err
		}
		if row.Dead, err = h.hooks.Deliveries(ctx, ns, hk.ID, "dead", 20); err != nil {
			return nil, err
		}
		p.Hooks = append(p.Hooks, row)
	}
	return p, nil
}

// applyWebhookForm applies a webhook form of the namespace page; the
// caller has checked the rights.
func (h *Handler) applyWebhookForm(ctx context.Context, r *http.Request, ns string) error {
	if h.hooks == nil {
		return fmt.Errorf("this registry keeps no webhooks: %w", errBadForm)
	}
	id, _ := strconv.ParseInt(r.PostFormValue("hook"), 10, 64)
	var err error
	switch op := r.PostFormValue("op"); op {
	case "webhook-add":
		_, err = h.hooks.Create(ctx, ns, notify.HookSpec{URL: r.PostFormValue("url"),
			Repositories: r.PostFormValue("repositories"), Format: r.PostFormValue("format"), Events: r.PostForm["event"]})
	case "webhook-rm":
		err = h.hooks.Delete(ctx, ns, id)
	case "webhook-rotate":
		_, err = h.hooks.Rotate(ctx, ns, id)
	case "webhook-rotate-done":
		_, err = h.hooks.FinishRotation(ctx, ns, id)
	case "webhook-redeliver":
		did, _ := strconv.ParseInt(r.PostFormValue("delivery"), 10, 64)
		err = h.hooks.Redeliver(ctx, ns, id, did)
	default:
		return fmt.Errorf("unknown form %q: %w", op, errBadForm)
	}
	return err
}

// webhookFormError reports whether err is the user's to fix, with the
// status and what to say.
func webhookFormError(err error) (int, string, bool) {
	var invalid *notify.Invalid
	switch {
	case errors.As(err, &invalid):
		return http.StatusBadRequest, invalid.Message, true
	case errors.Is(err, notify.ErrNotFound):
		return http.StatusNotFound, "No such webhook or dead delivery here.", true
	case errors.Is(err, errBadForm):
		return http.StatusBadRequest, err.Error(), true
	}
	return 0, "", false
}

// webhookForm applies a webhook form (rights checked) and goes back to
// the panel.
func (h *Handler) webhookForm(w http.ResponseWriter, r *http.Request, c caller, ns string) {
	err := h.applyWebhookForm(actingAs(r.Context(), c), r, ns)
	if err == nil {
		http.Redirect(w, r, "/u/"+ns+"?flash=webhook-changed#webhooks-h", http.StatusSeeOther)
	} else if status, msg, ok := webhookFormError(err); ok {
		h.showError(w, r, c, status, msg)
	} else {
		h.internal(w, r, c, err)
	}
}
