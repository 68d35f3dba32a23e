package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/wharf/wharf/internal/registry"
)

// Garbage collection's runs, for registry admins: the JSON API
// (GET/POST /v2/admin/gc/runs) and the page /admin/gc. A run's report
// says what any replica's collection removed; it names repositories, so
// only admins see it.

// hubRun is one run's report as the API shows it.
type hubRun struct {
	ID               int64           `json:"id"`
	Kind             string          `json:"kind"`
	Trigger          string          `json:"trigger"`
	Replica          string          `json:"replica"`
	Outcome          string          `json:"outcome"`
	StartedAt        *string         `json:"started_at"`
	FinishedAt       *string         `json:"finished_at"`
	DurationSeconds  float64         `json:"duration_seconds"`
	ManifestsDeleted int64           `json:"manifests_deleted"`
	BlobsDeleted     int64           `json:"blobs_deleted"`
	LinksDeleted     int64           `json:"links_deleted"`
	BytesReclaimed   int64           `json:"bytes_reclaimed"`
	Error            string          `json:"error"`
	Summary          json.RawMessage `json:"summary"`
}

func hubRunOf(r registry.Run) hubRun {
	out := hubRun{ID: r.ID, Kind: r.Kind, Trigger: r.Trigger, Replica: r.Replica, Outcome: r.Outcome,
		StartedAt: hubTime(r.StartedAt), FinishedAt: hubTime(r.FinishedAt),
		ManifestsDeleted: r.Manifests, BlobsDeleted: r.Blobs, LinksDeleted: r.Links, BytesReclaimed: r.Bytes,
		Error: r.Error, Summary: json.RawMessage("{}")}
	if !r.FinishedAt.IsZero() {
		out.DurationSeconds = r.FinishedAt.Sub(r.StartedAt).Seconds()
	}
	if json.Valid([]byte(r.Summary)) {
		out.Summary = json.RawMessage(r.Summary)
	}
	return out
}

// apiAdmin identifies an admin API caller, answering 401 to an anonymous
// one and 403 to anyone else. On an open registry everyone is admin.
func (h *Handler) apiAdmin(w http.ResponseWriter, r *http.Request) (caller, bool) {
	c, ok := h.apiCaller(w, r)
	switch {
	case !ok:
		return c, false
	case h.open() || c.sub.Admin && c.sub.Scope == "":
		return c, true
	case c.sub.Anonymous():
		writeSpecError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
	default:
		h.log.InfoContext(r.Context(), "access denied", "user", c.sub.User, "method", r.Method, "path", r.URL.Path, "needs", []string{"admin"})
		writeSpecError(w, http.StatusForbidden, "DENIED", "only registry admins may see and start garbage collections")
	}
	return c, false
}

// gcRuns answers 404 for a registry whose database keeps no run reports.
func (h *Handler) gcRuns(w http.ResponseWriter) *registry.GCRuns {
	gc := h.reg.GCRuns()
	if gc == nil {
		writeSpecError(w, http.StatusNotFound, "UNSUPPORTED", "this registry's database keeps no garbage collection runs")
	}
	return gc
}

// runKind reads ?kind= of a run listing: gc, retention, or all ("");
// def when absent.
func runKind(r *http.Request, def string) (string, bool) {
	switch k := r.URL.Query().Get("kind"); k {
	case "":
		return def, true
	case "all":
		return "", true
	case registry.GCRunKind, registry.RetentionRunKind:
		return k, true
	}
	return "", false
}

// apiGCRuns lists the runs of every replica, newest first, Hub-paged:
// GET /v2/admin/gc/runs lists garbage collections, GET /v2/admin/runs
// every job's runs (both take ?kind=gc|retention|all).
func (h *Handler) apiGCRuns(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.apiAdmin(w, r); !ok {
		return
	}
	def := registry.GCRunKind
	if r.URL.Path == "/v2/admin/runs" {
		def = ""
	}
	kind, ok := runKind(r, def)
	if !ok {
		writeSpecError(w, http.StatusBadRequest, "UNSUPPORTED", "kind must be gc, retention or all")
		return
	}
	page, size, ok := paging(r)
	if !ok {
		writeSpecError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "page and page_size must be positive integers")
		return
	}
	runs, total, err := h.reg.JobRuns(r.Context(), kind, (page-1)*size, size)
	if errors.Is(err, registry.ErrUnsupported) {
		writeSpecError(w, http.StatusNotFound, "UNSUPPORTED", "this registry's database keeps no job runs")
		return
	}
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	results := make([]hubRun, 0, len(runs))
	for _, run := range runs {
		results = append(results, hubRunOf(run))
	}
	writeJSON(w, http.StatusOK, envelope(r, page, size, total, results))
}

// apiStartGC starts a collection now, under the same lease as scheduled
// ones: 202 with the running run, or with ?wait=true 201 with its report
// once done (for scripts); 409 while a run is under way anywhere.
func (h *Handler) apiStartGC(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiAdmin(w, r)
	if !ok {
		return
	}
	gc := h.gcRuns(w)
	if gc == nil {
		return
	}
	wait, err := strconv.ParseBool(r.URL.Query().Get("wait"))
	if err != nil && r.URL.Query().Has("wait") {
		writeSpecError(w, http.StatusBadRequest, "UNSUPPORTED", "wait must be true or false")
		return
	}
	ctx := actingAs(r.Context(), c)
	trigger := gcTrigger(c)
	var run registry.Run
	status := http.StatusAccepted
	if wait {
		run, err = gc.Run(ctx, trigger)
		status = http.StatusCreated
	} else {
		run, err = gc.Start(ctx, trigger)
	}
	if errors.Is(err, registry.ErrGCBusy) {
		writeSpecError(w, http.StatusConflict, "GC_RUNNING", "a garbage collection is under way; try again when it ends")
		return
	}
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	h.log.InfoContext(ctx, "gc run started", "user", c.sub.User, "run", run.ID)
	writeJSON(w, status, hubRunOf(run))
}

// gcTrigger names who started a run from the API or the page.
func gcTrigger(c caller) string {
	if c.sub.User == "" {
		return "admin"
	}
	return "admin:" + c.sub.User
}

// gcPageSize is how many runs the page lists at a time.
const gcPageSize = 25

type gcPageData struct {
	// Kind is the kind of runs listed ("" for every job's).
	Kind     string
	Runs     []registry.Run
	Pager    pager
	Interval time.Duration
	Busy     bool
}

// adminUser returns the caller of an admin page, or answers the request:
// a signed-in browser of an admin (anyone on an open registry).
func (h *Handler) adminUser(w http.ResponseWriter, r *http.Request) (caller, bool) {
	if h.open() {
		c, _ := h.identify(r)
		if r.Method != http.MethodGet && !checkCSRF(r, c) {
			h.showError(w, r, c, http.StatusForbidden, "The form expired; reload the page and try again.")
			return c, false
		}
		return c, true
	}
	c, ok := h.signedIn(w, r)
	if ok && !c.sub.Admin {
		h.log.InfoContext(r.Context(), "access denied", "user", c.sub.User, "method", r.Method, "path", r.URL.Path, "needs", []string{"admin"})
		h.showError(w, r, c, http.StatusForbidden, "Only registry admins may see this page.")
		return c, false
	}
	return c, ok
}

// gcPage lists the runs and offers to start one.
func (h *Handler) gcPage(w http.ResponseWriter, r *http.Request) {
	c, ok := h.adminUser(w, r)
	if !ok {
		return
	}
	h.renderGC(w, r, c, http.StatusOK, false)
}

func (h *Handler) renderGC(w http.ResponseWriter, r *http.Request, c caller, status int, busy bool) {
	gc := h.reg.GCRuns()
	if gc == nil {
		h.showError(w, r, c, http.StatusNotFound, "This registry's database keeps no garbage collection runs.")
		return
	}
	page := pageParam(r)
	kind, ok := runKind(r, "")
	if !ok {
		h.showError(w, r, c, http.StatusBadRequest, "kind must be gc, retention or all")
		return
	}
	runs, total, err := h.reg.JobRuns(r.Context(), kind, (page-1)*gcPageSize, gcPageSize)
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	h.show(w, r, c, status, "admin_gc", "Garbage collection", gcPageData{Kind: kind,
		Runs: runs, Pager: newPager(r.URL, page, gcPageSize, total), Interval: gc.Interval(), Busy: busy})
}

// startGC is the page's "Run now" button.
func (h *Handler) startGC(w http.ResponseWriter, r *http.Request) {
	c, ok := h.adminUser(w, r)
	if !ok {
		return
	}
	gc := h.reg.GCRuns()
	if gc == nil {
		h.showError(w, r, c, http.StatusNotFound, "This registry's database keeps no garbage collection runs.")
		return
	}
	ctx := actingAs(r.Context(), c)
	run, err := gc.Start(ctx, gcTrigger(c))
	if errors.Is(err, registry.ErrGCBusy) {
		h.renderGC(w, r, c, http.StatusConflict, true)
		return
	}
	if err != nil {
		h.internal(w, r, c, err)
		return
	}
	h.log.InfoContext(ctx, "gc run started", "user", c.sub.User, "run", run.ID)
	http.Redirect(w, r, "/admin/gc?flash=gc-started", http.StatusSeeOther)
}
