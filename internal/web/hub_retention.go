package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/wharf/wharf/internal/registry"
)

// The retention routes of the JSON API. A preview is read with pull
// rights (a namespace's: its members'), as its policies are; a run now is
// a change, for owners and admins, as setting the policy is. The list of
// runs covers the whole registry: administrators only.

type hubRetentionPreview struct {
	Pattern string `json:"pattern"`
	// Repositories are those with a retention= policy, each with every
	// decision.
	Repositories []registry.RetentionPlan `json:"repositories"`
	// Delete lists only what would go, with the repository and the reason.
	Delete []hubRetentionDeletion `json:"delete"`
}

type hubRetentionDeletion struct {
	Repository string `json:"repository"`
	registry.RetentionItem
}

type hubRetentionRun struct {
	ID               int64   `json:"id"`
	StartedAt        *string `json:"started_at"`
	FinishedAt       *string `json:"finished_at"`
	Trigger          string  `json:"trigger"`
	Actor            string  `json:"actor"`
	Replica          string  `json:"replica"`
	Scope            string  `json:"scope"`
	Repositories     int64   `json:"repositories"`
	DeletedTags      int64   `json:"deleted_tags"`
	DeletedManifests int64   `json:"deleted_manifests"`
	Failures         int64   `json:"failures"`
	// Deleted is, per repository, what the run deleted or failed to.
	Deleted json.RawMessage `json:"deleted"`
}

func deletions(plans []registry.RetentionPlan) []hubRetentionDeletion {
	out := []hubRetentionDeletion{}
	for _, p := range plans {
		for _, it := range p.Deletions() {
			out = append(out, hubRetentionDeletion{Repository: p.Repository, RetentionItem: it})
		}
	}
	return out
}

// apiRetention serves GET …/retention/preview and POST …/retention/run of
// a repository or a namespace.
func (h *Handler) apiRetention(w http.ResponseWriter, r *http.Request) {
	c, pattern, ok := h.policyCaller(w, r)
	if !ok {
		return
	}
	ctx := actingAs(r.Context(), c)
	if r.Method == http.MethodGet {
		plans, err := h.reg.PreviewRetention(ctx, pattern)
		if err != nil {
			h.retentionError(w, r, err)
			return
		}
		if plans == nil {
			plans = []registry.RetentionPlan{}
		}
		writeJSON(w, http.StatusOK, hubRetentionPreview{Pattern: pattern, Repositories: plans, Delete: deletions(plans)})
		return
	}
	run, err := h.reg.RunRetention(ctx, pattern, "manual")
	if err != nil {
		h.retentionError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hubRetention(*run))
}

// apiRetentionRuns serves GET /v2/retention/runs[?before=ID&page_size=N].
func (h *Handler) apiRetentionRuns(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiCaller(w, r)
	if !ok {
		return
	}
	if !h.open() && !c.sub.Admin {
		if c.sub.Anonymous() {
			writeSpecError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		} else {
			writeSpecError(w, http.StatusForbidden, "DENIED", "only administrators see the retention runs")
		}
		return
	}
	q := r.URL.Query()
	before, err1 := strconv.ParseInt(q.Get("before"), 10, 64)
	n, err2 := strconv.Atoi(q.Get("page_size"))
	if (q.Get("before") != "" && (err1 != nil || before < 0)) || (q.Get("page_size") != "" && (err2 != nil || n < 1 || n > 100)) {
		writeSpecError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "before must be a run id and page_size a number from 1 to 100")
		return
	}
	if n == 0 {
		n = 20
	}
	runs, err := h.reg.RetentionRuns(r.Context(), before, n)
	if err != nil {
		h.retentionError(w, r, err)
		return
	}
	out := []hubRetentionRun{}
	for _, run := range runs {
		out = append(out, hubRetention(run))
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
}

func hubRetention(run registry.RetentionRun) hubRetentionRun {
	report := json.RawMessage(run.Report)
	if len(report) == 0 || string(report) == "null" {
		report = json.RawMessage("[]")
	}
	return hubRetentionRun{ID: run.ID, StartedAt: hubTime(run.StartedAt), FinishedAt: hubTime(run.FinishedAt),
		Trigger: run.Trigger, Actor: run.Actor, Replica: run.Replica, Scope: run.Scope, Repositories: run.Repositories,
		DeletedTags: run.DeletedTags, DeletedManifests: run.DeletedManifests, Failures: run.Failures, Deleted: report}
}

func (h *Handler) retentionError(w http.ResponseWriter, r *http.Request, err error) {
	var de *registry.Error
	switch {
	case errors.Is(err, registry.ErrNameUnknown):
		writeSpecError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such repository")
	case errors.Is(err, registry.ErrUnsupported) && errors.As(err, &de):
		writeSpecError(w, http.StatusNotFound, "UNSUPPORTED", de.Message)
	default:
		h.apiInternal(w, r, err)
	}
}

// retentionPanel is the retention preview of a repository's settings:
// what the next run would delete, and why.
type retentionPanel struct {
	Policy, Pattern string
	Delete          []registry.RetentionItem
	Kept            int
}

// retentionPanel previews repo's retention; nil when no retention=
// policy applies or the store keeps none.
func (h *Handler) retentionPanel(ctx context.Context, repo string) (*retentionPanel, error) {
	plans, err := h.reg.PreviewRetention(ctx, repo)
	if errors.Is(err, registry.ErrUnsupported) {
		return nil, nil
	}
	if err != nil || len(plans) == 0 {
		return nil, err
	}
	p := plans[0]
	del := p.Deletions()
	return &retentionPanel{Policy: p.Policy, Pattern: p.Pattern, Delete: del, Kept: len(p.Tags) + len(p.Manifests) - len(del)}, nil
}
