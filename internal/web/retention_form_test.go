package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

// The policies panel of a repository's settings and of a namespace's page
// offers "Run retention now": it deletes what the retention= rules name,
// there and then, and the run is listed with the scheduled ones.
func TestRetention_RunNowFromTheSettingsPanels(t *testing.T) {
	srv := registrytest.NewServer(t)
	for _, ref := range []string{"bob/app:v1", "bob/app:v2", "alice/lib:v1", "alice/lib:v2"} {
		push(t, srv, ref, testImage(t, "amd64"))
	}
	b := newBrowser(t, srv)
	for _, form := range []struct{ page, action string }{
		{"/r/bob/app/settings", "/r/bob/app/settings"},
		{"/u/alice", "/u/alice"},
	} {
		wantContains(t, form.page, b.get(form.page).body, `value="retention-run"`, "Run retention now")
		if resp := b.post(form.action, url.Values{"op": {"policy-set"}, "key": {"retention"}, "value": {"last=1"}}); resp.code != http.StatusSeeOther {
			t.Fatalf("set retention on %s = %d %s", form.page, resp.code, resp.body)
		}
		resp := b.post(form.action, url.Values{"op": {"retention-run"}})
		if resp.code != http.StatusSeeOther || !strings.Contains(resp.header.Get("Location"), "flash=retention-ran") {
			t.Fatalf("run retention from %s = %d %q %s", form.page, resp.code, resp.header.Get("Location"), resp.body)
		}
	}
	for repo, want := range map[string]int{"bob/app": http.StatusNotFound, "alice/lib": http.StatusNotFound} {
		if got := b.get("/r/" + repo + "/tags/v1").code; got != want {
			t.Errorf("%s:v1 after the run = %d, want %d", repo, got, want)
		}
		if got := b.get("/r/" + repo + "/tags/v2").code; got != http.StatusOK {
			t.Errorf("%s:v2 after the run = %d, want it kept", repo, got)
		}
	}
	runs := b.get("/v2/retention/runs").body
	if n := strings.Count(runs, `"trigger":"manual"`); n != 2 {
		t.Errorf("retention runs = %s, want the two manual runs", runs)
	}

	// One list has every job's runs: the API and the admin page.
	resp, err := http.Post(srv.URL+"/v2/admin/gc/runs?wait=true", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("gc run = %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		path          string
		gc, retention int
	}{
		{"/v2/admin/runs", 1, 2},
		{"/v2/admin/runs?kind=retention", 0, 2},
		{"/v2/admin/gc/runs", 1, 0},
		{"/v2/admin/gc/runs?kind=all", 1, 2},
	} {
		body := b.get(tc.path).body
		if strings.Count(body, `"kind":"gc"`) != tc.gc || strings.Count(body, `"kind":"retention"`) != tc.retention {
			t.Errorf("%s = %s, want %d gc and %d retention runs", tc.path, body, tc.gc, tc.retention)
		}
	}
	if got := b.get("/v2/admin/runs?kind=cron"); got.code != http.StatusBadRequest || !strings.Contains(got.body, `"code":"UNSUPPORTED"`) {
		t.Errorf("kind=cron = %d %s, want 400 UNSUPPORTED", got.code, got.body)
	}
	page := b.get("/admin/gc").body
	if strings.Count(page, `class="kind">retention<`) != 2 || strings.Count(page, `class="kind">gc<`) != 1 {
		t.Errorf("admin page lists %d retention and %d gc runs, want 2 and 1", strings.Count(page, `class="kind">retention<`), strings.Count(page, `class="kind">gc<`))
	}
}
