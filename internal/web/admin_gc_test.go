package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata/sqldb"
)

type gcRunAnswer struct {
	Count   int `json:"count"`
	Results []struct {
		ID             int64           `json:"id"`
		Kind           string          `json:"kind"`
		Trigger        string          `json:"trigger"`
		Replica        string          `json:"replica"`
		Outcome        string          `json:"outcome"`
		StartedAt      *string         `json:"started_at"`
		FinishedAt     *string         `json:"finished_at"`
		BytesReclaimed int64           `json:"bytes_reclaimed"`
		Summary        json.RawMessage `json:"summary"`
	} `json:"results"`
	// A single run (POST) is decoded into these.
	ID      int64  `json:"id"`
	Outcome string `json:"outcome"`
	Trigger string `json:"trigger"`
	Errors  []struct {
		Code string `json:"code"`
	} `json:"errors"`
}

func callGC(t *testing.T, base, method, path, user, password string) (int, gcRunAnswer) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, body)
	must(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	var out gcRunAnswer
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s = %d, not JSON: %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

func errCode(a gcRunAnswer) string {
	if len(a.Errors) == 0 {
		return ""
	}
	return a.Errors[0].Code
}

// Only registry admins see and start garbage collections, through the
// API and the admin page. A start takes the lease that scheduled runs
// take, so while another replica holds it the answer is 409 GC_RUNNING.
func TestAdminGC_RunsThroughTheAPIAndThePage(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	const runs = "/v2/admin/gc/runs"

	if code, a := callGC(t, srv.URL, "GET", runs, "", ""); code != http.StatusUnauthorized || errCode(a) != "UNAUTHORIZED" {
		t.Errorf("anonymous GET = %d %+v; want 401 UNAUTHORIZED", code, a.Errors)
	}
	for _, m := range []string{"GET", "POST"} {
		if code, a := callGC(t, srv.URL, m, runs, "alice", userPassword); code != http.StatusForbidden || errCode(a) != "DENIED" {
			t.Errorf("alice's %s = %d %+v; want 403 DENIED", m, code, a.Errors)
		}
	}
	if logs.count("access denied", "user=alice", "path="+runs) != 2 {
		t.Errorf("alice's refusals were not audited:\n%s", logs.buf.String())
	}

	code, run := callGC(t, srv.URL, "POST", runs+"?wait=true", "admin", adminPassword)
	if code != http.StatusCreated || run.Outcome != "ok" || run.Trigger != "admin:admin" || run.ID == 0 {
		t.Fatalf("admin's POST ?wait=true = %d %+v; want 201 with an ok run", code, run)
	}

	// Another replica holds the lease.
	db, err := sqldb.OpenSQLite(t.Context(), srv.Config.Database.SQLite.Path, nil)
	must(t, err)
	defer db.Close()
	now := time.Now()
	if ok, err := db.AcquireJob(t.Context(), "gc", "elsewhere/1", now, now.Add(time.Hour), now.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("AcquireJob as another replica = %v, %v", ok, err)
	}
	if code, a := callGC(t, srv.URL, "POST", runs, "admin", adminPassword); code != http.StatusConflict || errCode(a) != "GC_RUNNING" {
		t.Errorf("POST while another replica runs = %d %+v; want 409 GC_RUNNING", code, a.Errors)
	}
	admin := newBrowser(t, srv)
	admin.signIn("admin", adminPassword)
	if resp := admin.post("/admin/gc", url.Values{}); resp.code != http.StatusConflict || !strings.Contains(text(resp.body), "under way") {
		t.Errorf("Run now while another replica runs = %d %s", resp.code, text(resp.body))
	}
	must(t, db.ReleaseJob(t.Context(), "gc", "elsewhere/1"))

	code, list := callGC(t, srv.URL, "GET", runs+"?page_size=10", "admin", adminPassword)
	if code != http.StatusOK || list.Count != 1 || len(list.Results) != 1 {
		t.Fatalf("admin's GET = %d %+v; want the one run", code, list)
	}
	if r := list.Results[0]; r.ID != run.ID || r.Kind != "gc" || r.Outcome != "ok" || r.Replica == "" || r.StartedAt == nil || r.FinishedAt == nil || !json.Valid(r.Summary) {
		t.Errorf("listed run = %+v", r)
	}
	if code, _ := callGC(t, srv.URL, "GET", runs+"?page=0", "admin", adminPassword); code != http.StatusBadRequest {
		t.Errorf("GET ?page=0 = %d, want 400", code)
	}

	// The page: admins only, signed in.
	if resp := newBrowser(t, srv).get("/admin/gc"); resp.code != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), "/signin") {
		t.Errorf("anonymous /admin/gc = %d %s", resp.code, resp.header.Get("Location"))
	}
	alice := newBrowser(t, srv)
	alice.signIn("alice", userPassword)
	if resp := alice.get("/admin/gc"); resp.code != http.StatusForbidden {
		t.Errorf("alice's /admin/gc = %d, want 403", resp.code)
	}
	if resp := alice.post("/admin/gc", url.Values{}); resp.code != http.StatusForbidden {
		t.Errorf("alice's Run now = %d, want 403", resp.code)
	}
	page := admin.get("/admin/gc")
	if page.code != http.StatusOK {
		t.Fatalf("admin's /admin/gc = %d", page.code)
	}
	wantContains(t, "the GC page", page.body, `data-run="1"`, `href="/admin"`)
	wantContains(t, "the admin page", admin.get("/admin").body, `href="/admin/gc"`)
	wantContains(t, "the admin page", text(page.body), "Garbage collection", "Runs every 1h0m0s", "admin:admin", "ok")
	if resp := admin.post("/admin/gc", url.Values{}); resp.code != http.StatusSeeOther || resp.header.Get("Location") != "/admin/gc?flash=gc-started" {
		t.Errorf("admin's Run now = %d %s", resp.code, resp.header.Get("Location"))
	}
	if logs.count("gc run started", "user=admin") != 2 {
		t.Errorf("the starts were not logged with their admin:\n%s", logs.buf.String())
	}
}
