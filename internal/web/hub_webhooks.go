package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/wharf/wharf/internal/notify"
)

// The webhook routes of the JSON API, under /v2/namespaces/{ns}/webhooks.
// Only those who may change the namespace's settings (its owners, org
// admins, registry admins: delete rights, as for policies) see or change
// its hooks: a hook shows its secrets.

// hubHook is a hook as the API shows it.
type hubHook struct {
	ID        int64  `json:"id"`
	Namespace string `json:"namespace"`
	// Repositories is the hook's pattern inside the namespace ("" for all).
	Repositories string   `json:"repositories"`
	Pattern      string   `json:"pattern"`
	URL          string   `json:"url"`
	Events       []string `json:"events"`
	Format       string   `json:"format"`
	// Secrets sign deliveries, newest first; two while a rotation runs.
	Secrets   []string `json:"secrets"`
	CreatedBy string   `json:"created_by"`
	CreatedAt *string  `json:"created_at"`
}

type hubDelivery struct {
	ID          int64   `json:"id"`
	EventID     string  `json:"event_id"`
	Action      string  `json:"action"`
	Repository  string  `json:"repository"`
	Tag         string  `json:"tag,omitempty"`
	Digest      string  `json:"digest,omitempty"`
	State       string  `json:"state"`
	Attempts    int     `json:"attempts"`
	LastError   string  `json:"last_error,omitempty"`
	CreatedAt   *string `json:"created_at"`
	NextAttempt *string `json:"next_attempt,omitempty"`
	DeliveredAt *string `json:"delivered_at,omitempty"`
}

func toHubHook(h *notify.Hook) hubHook {
	rel := strings.TrimPrefix(h.Pattern, h.Namespace+"/")
	if rel == "*" {
		rel = ""
	}
	return hubHook{ID: h.ID, Namespace: h.Namespace, Repositories: rel, Pattern: h.Pattern, URL: h.URL, Events: h.Events,
		Format: h.Format, Secrets: h.Secrets, CreatedBy: h.CreatedBy, CreatedAt: hubTime(h.CreatedAt)}
}

func toHubDelivery(d notify.Delivery) hubDelivery {
	out := hubDelivery{ID: d.ID, EventID: d.EventID, Action: d.Action, Repository: d.Repo, Tag: d.Tag,
		Digest: d.Digest.String(), State: d.State, Attempts: d.Attempts, LastError: d.LastError,
		CreatedAt: hubTime(d.CreatedAt), DeliveredAt: hubTime(d.DeliveredAt)}
	if d.State == "pending" {
		out.NextAttempt = hubTime(d.NextAttempt)
	}
	return out
}

// apiWebhooks serves every webhook route: the namespace's rights are
// checked once, then the method and path pick the call.
func (h *Handler) apiWebhooks(w http.ResponseWriter, r *http.Request) {
	ctx, _, ns, ok := h.settingsCall(w, r, h.hooks != nil, "webhooks")
	if !ok {
		return
	}
	ids, ok := pathIDs(w, r, "WEBHOOK_UNKNOWN", "no such webhook or delivery", "id", "delivery")
	if !ok {
		return
	}
	id, did := ids[0], ids[1]
	var (
		hook *notify.Hook
		err  error
	)
	switch route := r.Pattern; {
	case strings.Contains(route, "/redeliver"):
		if err = h.hooks.Redeliver(ctx, ns, id, did); err == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
	case strings.Contains(route, "/deliveries"):
		var ds []notify.Delivery
		if ds, err = h.hooks.Deliveries(ctx, ns, id, r.URL.Query().Get("state"), 100); err == nil {
			out := make([]hubDelivery, 0, len(ds))
			for _, d := range ds {
				out = append(out, toHubDelivery(d))
			}
			writeJSON(w, http.StatusOK, map[string]any{"results": out})
			return
		}
	case strings.Contains(route, "/rotate") && r.Method == http.MethodPost:
		hook, err = h.hooks.Rotate(ctx, ns, id)
	case strings.Contains(route, "/rotate"):
		hook, err = h.hooks.FinishRotation(ctx, ns, id)
	case r.Method == http.MethodGet && id == 0:
		var hooks []notify.Hook
		if hooks, err = h.hooks.List(ctx, ns); err == nil {
			out := make([]hubHook, 0, len(hooks))
			for i := range hooks {
				out = append(out, toHubHook(&hooks[i]))
			}
			writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "results": out})
			return
		}
	case r.Method == http.MethodGet:
		hook, err = h.hooks.Get(ctx, ns, id)
	case r.Method == http.MethodDelete:
		if err = h.hooks.Delete(ctx, ns, id); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	default: // POST a new hook, PUT an existing one
		var spec notify.HookSpec
		if spec, ok = decodeHookSpec(w, r); !ok {
			return
		}
		if r.Method == http.MethodPost {
			hook, err = h.hooks.Create(ctx, ns, spec)
		} else {
			hook, err = h.hooks.Update(ctx, ns, id, spec)
		}
	}
	var invalid *notify.Invalid
	switch {
	case errors.As(err, &invalid):
		writeSpecError(w, http.StatusBadRequest, "WEBHOOK_INVALID", invalid.Message)
	case errors.Is(err, notify.ErrNotFound):
		writeSpecError(w, http.StatusNotFound, "WEBHOOK_UNKNOWN", "no such webhook or dead delivery in "+ns)
	case err != nil:
		h.apiInternal(w, r, err)
	case r.Method == http.MethodPost && id == 0:
		writeJSON(w, http.StatusCreated, toHubHook(hook))
	default:
		writeJSON(w, http.StatusOK, toHubHook(hook))
	}
}

func decodeHookSpec(w http.ResponseWriter, r *http.Request) (notify.HookSpec, bool) {
	var body struct {
		Repositories string   `json:"repositories"`
		URL          string   `json:"url"`
		Events       []string `json:"events"`
		Format       string   `json:"format"`
		Secret       string   `json:"secret"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeSpecError(w, http.StatusBadRequest, "WEBHOOK_INVALID",
			`the body must be a JSON object as {"url": "https://…", "events": ["push"], "format": "cncf", "repositories": ""}`)
		return notify.HookSpec{}, false
	}
	return notify.HookSpec{Repositories: body.Repositories, URL: body.URL, Events: body.Events, Format: body.Format,
		Secret: body.Secret}, true
}
