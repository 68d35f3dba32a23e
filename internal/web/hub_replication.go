package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/replicate"
	"github.com/wharf/wharf/internal/secretkey"
)

// The replication routes of the JSON API, under
// /v2/namespaces/{ns}/replication. Only those who may change the
// namespace's settings (delete rights, as for webhooks) see or change its
// rules. A rule's password is write-only: it is never answered back,
// only whether one is stored.

// hubRule is a rule with its status as the API shows it.
type hubRule struct {
	ID        int64  `json:"id"`
	Namespace string `json:"namespace"`
	// Repositories is the rule's pattern inside the namespace ("" for all).
	Repositories string  `json:"repositories"`
	Pattern      string  `json:"pattern"`
	URL          string  `json:"url"`
	DestPrefix   string  `json:"dest_prefix"`
	Username     string  `json:"username"`
	HasPassword  bool    `json:"has_password"`
	CreatedBy    string  `json:"created_by"`
	CreatedAt    *string `json:"created_at"`
	Status       struct {
		LastRun   *string `json:"last_run"`
		LastOK    *string `json:"last_ok"`
		LastError string  `json:"last_error"`
		Failures  int64   `json:"failures"`
		// Pending counts the events not yet replicated; LagSeconds is
		// the age of the oldest of them (0 when none).
		Pending    int64   `json:"pending"`
		LagSeconds float64 `json:"lag_seconds"`
	} `json:"status"`
}

func toHubRule(r *replicate.Rule) hubRule {
	rel := strings.TrimPrefix(r.Pattern, r.Namespace+"/")
	if rel == "*" {
		rel = ""
	}
	out := hubRule{ID: r.ID, Namespace: r.Namespace, Repositories: rel, Pattern: r.Pattern, URL: r.URL, DestPrefix: r.DestPrefix,
		Username: r.Username, HasPassword: r.HasPassword, CreatedBy: r.CreatedBy, CreatedAt: hubTime(r.CreatedAt)}
	out.Status.LastRun, out.Status.LastOK, out.Status.LastError = hubTime(r.LastRun), hubTime(r.LastOK), r.LastError
	out.Status.Failures, out.Status.Pending = r.Failures, r.Pending
	out.Status.LagSeconds = r.Lag.Seconds()
	return out
}

// apiReplication serves every replication route: the namespace's rights
// are checked once, then the method and path pick the call.
func (h *Handler) apiReplication(w http.ResponseWriter, r *http.Request) {
	ctx, c, ns, ok := h.settingsCall(w, r, h.repl != nil, "replication rules")
	if !ok {
		return
	}
	ids, ok := pathIDs(w, r, "REPLICATION_RULE_UNKNOWN", "no such replication rule in "+ns, "id")
	if !ok {
		return
	}
	id := ids[0]
	var (
		rule *replicate.Rule
		err  error
	)
	switch {
	case strings.HasSuffix(r.Pattern, "/reconcile"):
		if err = h.repl.Reconcile(ctx, ns, id); err == nil {
			writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "reconcile": "queued"})
			return
		}
	case r.Method == http.MethodGet && id == 0:
		var rules []replicate.Rule
		if rules, err = h.repl.Rules(ctx, ns); err == nil {
			out := make([]hubRule, 0, len(rules))
			for i := range rules {
				out = append(out, toHubRule(&rules[i]))
			}
			writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "results": out})
			return
		}
	case r.Method == http.MethodDelete:
		if err = h.repl.DeleteRule(ctx, ns, id); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	case r.Method == http.MethodPost || r.Method == http.MethodPut:
		spec, ok := decodeRuleSpec(w, r)
		if !ok {
			return
		}
		if r.Method == http.MethodPost {
			id, err = h.repl.CreateRule(ctx, ns, spec, c.sub.User)
		} else {
			err = h.repl.UpdateRule(ctx, ns, id, spec)
		}
	}
	if err == nil {
		rule, err = h.repl.Rule(ctx, ns, id)
	}
	switch {
	case errors.Is(err, replicate.ErrInvalid):
		writeSpecError(w, http.StatusBadRequest, "REPLICATION_RULE_INVALID", err.Error())
	case errors.Is(err, secretkey.ErrNoKey):
		writeSpecError(w, http.StatusBadRequest, "REPLICATION_RULE_INVALID",
			"no secret key to store the password with: set secret_key (WHARF_SECRET_KEY) on every replica")
	case errors.Is(err, replicate.ErrNotFound):
		writeSpecError(w, http.StatusNotFound, "REPLICATION_RULE_UNKNOWN", "no such replication rule in "+ns)
	case errors.Is(err, replicate.ErrBusy):
		writeSpecError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "too many reconciles waiting; try again later")
	case err != nil:
		h.apiInternal(w, r, err)
	case r.Method == http.MethodPost:
		writeJSON(w, http.StatusCreated, toHubRule(rule))
	default:
		writeJSON(w, http.StatusOK, toHubRule(rule))
	}
}

func decodeRuleSpec(w http.ResponseWriter, r *http.Request) (replicate.RuleSpec, bool) {
	var body struct {
		Repositories string `json:"repositories"`
		URL          string `json:"url"`
		DestPrefix   string `json:"dest_prefix"`
		Username     string `json:"username"`
		Password     string `json:"password"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeSpecError(w, http.StatusBadRequest, "REPLICATION_RULE_INVALID",
			`the body must be a JSON object as {"url": "https://…", "repositories": "", "dest_prefix": "", "username": "", "password": ""}`)
		return replicate.RuleSpec{}, false
	}
	return replicate.RuleSpec{Repositories: body.Repositories, URL: body.URL, DestPrefix: body.DestPrefix,
		Username: body.Username, Password: body.Password}, true
}

// settingsCall begins a call of a namespace's settings API (webhooks,
// replication rules): the caller must be able to change the namespace
// (delete rights, as for policies), and the registry must keep what is
// asked for. It returns the context acting as the caller.
func (h *Handler) settingsCall(w http.ResponseWriter, r *http.Request, kept bool, what string) (context.Context, caller, string, bool) {
	c, ok := h.apiCaller(w, r)
	if !ok {
		return nil, c, "", false
	}
	ns := r.PathValue("ns")
	if !h.apiMay(w, r, c, ns+"/*", auth.ActionDelete) {
		return nil, c, "", false
	}
	if !kept {
		writeSpecError(w, http.StatusNotFound, "UNSUPPORTED", "this registry's database keeps no "+what)
		return nil, c, "", false
	}
	return actingAs(r.Context(), c), c, ns, true
}

// pathIDs parses the numeric path values keys (0 for one not in the
// path); one that is no number is answered 404 with code and msg.
func pathIDs(w http.ResponseWriter, r *http.Request, code, msg string, keys ...string) ([]int64, bool) {
	ids := make([]int64, len(keys))
	for i, key := range keys {
		if v := r.PathValue(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				writeSpecError(w, http.StatusNotFound, code, msg)
				return nil, false
			}
			ids[i] = n
		}
	}
	return ids, true
}
