package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

type historyPage struct {
	Count   int     `json:"count"`
	Next    *string `json:"next"`
	Results []struct {
		Tag, Actor, Via string
		From, To        *string
		At              *string
	} `json:"results"`
}

type specErrors struct {
	Errors []struct{ Code, Message string } `json:"errors"`
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	must(t, err)
	return d.String()
}

// apiCall sends a JSON API request as user (anonymous if "") and decodes
// the answer into out.
func apiCall(t *testing.T, srv *registrytest.Server, user, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	must(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, userPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s = %d, not JSON: %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

// TestHubAPI_TagHistoryAndRestore: readers page through a tag's history,
// writers restore it (a deleted tag too), others are refused, and an
// immutable tag refuses the restore and the delete with DENIED.
func TestHubAPI_TagHistoryAndRestore(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	seedAccounts(t, srv)
	alice := remoteOpts("alice", userPassword)
	a, b := testImage(t, "amd64"), testImage(t, "arm64")
	push(t, srv, "alice/app:latest", a, alice...)
	push(t, srv, "alice/app:latest", b, alice...)
	must(t, srv.Auth.SetVisibility(t.Context(), "alice/app", auth.Public))
	base := "/v2/namespaces/alice/repositories/app/tags/latest"

	var page historyPage
	if code := apiCall(t, srv, "bob", http.MethodGet, base+"/history?page_size=1", "", &page); code != http.StatusOK {
		t.Fatalf("history as a reader: %d", code)
	}
	if page.Count != 2 || len(page.Results) != 1 || page.Next == nil {
		t.Fatalf("page 1 of 1: %+v", page)
	}
	if r := page.Results[0]; r.Via != "push" || r.Actor != "alice" || *r.From != digestOf(t, a) || *r.To != digestOf(t, b) {
		t.Errorf("newest change = %+v, want alice's push from a to b", r)
	}
	if code := apiCall(t, srv, "bob", http.MethodGet, base+"/history?page=3&page_size=1", "", nil); code != http.StatusNotFound {
		t.Errorf("a page past the end: %d, want 404", code)
	}

	restore := `{"digest":"` + digestOf(t, a) + `"}`
	var e specErrors
	if code := apiCall(t, srv, "bob", http.MethodPost, base+"/restore", restore, &e); code != http.StatusForbidden {
		t.Errorf("restore by a reader: %d, want 403", code)
	}
	if code := apiCall(t, srv, "", http.MethodPost, base+"/restore", restore, nil); code != http.StatusUnauthorized {
		t.Errorf("restore anonymously: %d, want 401", code)
	}
	for body, want := range map[string]string{`{}`: "DIGEST_INVALID", `{"digest":"sha256:x"}`: "DIGEST_INVALID",
		`{"digest":"sha256:` + strings.Repeat("0", 64) + `"}`: "MANIFEST_UNKNOWN"} {
		e = specErrors{}
		apiCall(t, srv, "alice", http.MethodPost, base+"/restore", body, &e)
		if len(e.Errors) != 1 || e.Errors[0].Code != want {
			t.Errorf("restore %s: %+v, want %s", body, e, want)
		}
	}
	var tag struct{ Digest string }
	if code := apiCall(t, srv, "alice", http.MethodPost, base+"/restore", restore, &tag); code != http.StatusOK || tag.Digest != digestOf(t, a) {
		t.Fatalf("restore by the owner: %d %+v", code, tag)
	}
	// A deleted tag comes back.
	if code := apiCall(t, srv, "alice", http.MethodDelete, base, "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code := apiCall(t, srv, "alice", http.MethodPost, base+"/restore", restore, &tag); code != http.StatusOK {
		t.Fatalf("restore of a deleted tag: %d", code)
	}
	page = historyPage{}
	apiCall(t, srv, "alice", http.MethodGet, base+"/history", "", &page)
	var vias []string
	for _, r := range page.Results {
		vias = append(vias, r.Via)
	}
	if got := strings.Join(vias, " "); got != "rollback delete rollback push push" {
		t.Errorf("history: %s", got)
	}

	// Immutable: neither moved back nor deleted, and the answer says why.
	setPolicy(t, srv, "alice/*", registry.KeyImmutableTags, "latest")
	e = specErrors{}
	code := apiCall(t, srv, "alice", http.MethodPost, base+"/restore", `{"digest":"`+digestOf(t, b)+`"}`, &e)
	if code != http.StatusForbidden || len(e.Errors) != 1 || e.Errors[0].Code != "DENIED" ||
		!strings.HasPrefix(e.Errors[0].Message, `tag "latest" is immutable in alice/app (policy immutable-tags=latest, set on alice/*)`) {
		t.Errorf("restore of an immutable tag: %d %+v", code, e)
	}
	e = specErrors{}
	if code := apiCall(t, srv, "alice", http.MethodDelete, base, "", &e); code != http.StatusForbidden || len(e.Errors) != 1 || e.Errors[0].Code != "DENIED" {
		t.Errorf("delete of an immutable tag: %d %+v", code, e)
	}
}

// TestPages_TagHistoryTimelineRestoreAndFloatingEvolution: the history
// page of a semver repository shows where latest, 2 and 2.1 pointed after
// each release; a tag's timeline lists its moves and restores from a form.
func TestPages_TagHistoryTimelineRestoreAndFloatingEvolution(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	seedAccounts(t, srv)
	setPolicy(t, srv, "alice/*", registry.KeyFloatingTags, "semver")
	alice := remoteOpts("alice", userPassword)
	imgs := map[string]v1.Image{}
	for _, v := range []string{"2.0.0", "2.1.0", "1.9.0", "2.1.1"} {
		img, err := random.Image(64, 1)
		must(t, err)
		imgs[v] = img
		push(t, srv, "alice/app:"+v, img, alice...)
	}
	br := newBrowser(t, srv)
	br.signIn("alice", userPassword)
	page := br.get("/r/alice/app/history")
	if page.code != http.StatusOK {
		t.Fatalf("history page: %d", page.code)
	}
	txt := text(page.body)
	wantContains(t, "history page", txt, "Floating tags across releases",
		// Columns, then each release (newest first) with the time it was
		// pushed, where every floating tag pointed, and the next release.
		"Release latest 2 2.1 2.0 1 1.9 2.1.1",
		"ago 2.1.1 2.1.1 2.1.1 2.0.0 1.9.0 1.9.0 1.9.0",
		"ago 2.1.0 2.1.0 2.1.0 2.0.0 1.9.0 1.9.0 2.1.0",
		"ago 2.1.0 2.1.0 2.1.0 2.0.0 — — 2.0.0",
		"ago 2.0.0 2.0.0 — 2.0.0 — — Tag history")

	// One tag's timeline, reached from the tags page.
	tags := br.get("/r/alice/app/tags")
	wantContains(t, "tags page", tags.body, `href="/r/alice/app/history?tag=latest"`)
	tl := br.get("/r/alice/app/history?tag=latest")
	wantContains(t, "latest's timeline", text(tl.body), "History of latest", "moved from", "floating by wharf (for alice)", "created")
	resp := br.post("/r/alice/app/history?tag=latest", url.Values{"op": {"restore"}, "tag": {"latest"}, "digest": {digestOf(t, imgs["2.1.0"])}})
	if resp.code != http.StatusSeeOther || !strings.Contains(resp.header.Get("Location"), "flash=tag-restored") {
		t.Fatalf("restore form: %d %s", resp.code, resp.header.Get("Location"))
	}
	tl = br.get("/r/alice/app/history?tag=latest")
	wantContains(t, "timeline after the restore", text(tl.body), "rollback by alice")

	// Readers see the history but get no restore buttons, and may not post.
	bob := newBrowser(t, srv)
	must(t, srv.Auth.SetVisibility(t.Context(), "alice/app", auth.Public))
	bob.signIn("bob", userPassword)
	wantLacks(t, "a reader's timeline", bob.get("/r/alice/app/history?tag=latest").body, `value="restore"`)
	if resp := bob.post("/r/alice/app/history?tag=latest", url.Values{"op": {"restore"}, "tag": {"latest"}, "digest": {digestOf(t, imgs["2.0.0"])}}); resp.code != http.StatusForbidden {
		t.Errorf("restore by a reader: %d, want 403", resp.code)
	}
}
