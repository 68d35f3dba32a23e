package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/server"
	"github.com/wharf/wharf/internal/servicetest"
)

// replicaSet starts wharf servers with accounts on one PostgreSQL
// database and one S3 bucket: replicas behind a load balancer, which may
// send any request to any of them. They read one clock, so that login
// blocks last until the test moves it.
type replicaSet struct {
	clock  *clocktest.Clock
	shared []registrytest.Option
}

func newReplicaSet(t *testing.T) *replicaSet {
	t.Helper()
	dbURL := servicetest.StartPostgres(t).Database(t)
	s3 := servicetest.StartS3(t)
	clock := clocktest.New()
	return &replicaSet{clock: clock, shared: []registrytest.Option{
		registrytest.WithConfig(func(c *config.Config) { c.Database.URL = dbURL }),
		onS3(s3, s3.Bucket(t)),
		registrytest.WithAuth(adminPassword),
		registrytest.WithClock(clock.Now),
	}}
}

// start starts one more replica and returns it with a client for it.
func (r *replicaSet) start(t *testing.T) (*registrytest.Server, *authWorld) {
	t.Helper()
	srv := registrytest.NewServer(t, r.shared...)
	return srv, &authWorld{srv: srv, manifest: map[string]digest.Digest{}, layer: map[string]digest.Digest{}, body: map[string][]byte{}}
}

// hubLogin posts the Hub API's login.
func (w *authWorld) hubLogin(t *testing.T, user, password string) reply {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	return w.do(t, "POST", "/v2/users/login", func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, body)
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// webDo sends a request to the web UI with cookies (and, if not nil, a
// form), without following the redirect it may answer.
func (w *authWorld) webDo(t *testing.T, method, path string, form url.Values, cookies ...*http.Cookie) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, w.srv.URL+path, strings.NewReader(form.Encode()))
	must(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirects.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return reply{resp.StatusCode, resp.Header, b}
}

// webSignIn signs in through the web form (a CSRF cookie first, then the
// form) and returns the answer with the session cookie, if one was set.
func (w *authWorld) webSignIn(t *testing.T, user, password string) (reply, *http.Cookie) {
	t.Helper()
	page := w.do(t, "GET", "/signin", basic("", ""), nil)
	var csrf *http.Cookie
	for _, c := range (&http.Response{Header: page.header}).Cookies() {
		if c.Name == "wharf_csrf" {
			csrf = c
		}
	}
	if csrf == nil {
		t.Fatalf("GET /signin set no CSRF cookie: %d %v", page.status, page.header)
	}
	form := url.Values{"csrf": {csrf.Value}, "username": {user}, "password": {password}, "next": {"/"}}
	got := w.webDo(t, "POST", "/signin", form, csrf)
	for _, c := range (&http.Response{Header: got.header}).Cookies() {
		if c.Name == "wharf_session" && c.Value != "" {
			return got, c
		}
	}
	return got, nil
}

// A guesser who sends each try to the other replica is blocked after as
// many failures as on one server, on the token endpoint, the Hub API's
// login and the web sign-in form alike, and then on every replica.
func TestReplicas_ShareLoginBackOff(t *testing.T) {
	set := newReplicaSet(t)
	a, wa := set.start(t)
	_, wb := set.start(t)
	for _, u := range []string{"tina", "hugo", "wendy"} {
		must(t, a.Auth.AddUser(t.Context(), u, userPassword, false))
	}
	replicas := []*authWorld{wa, wb}
	const scope = "repository:tina/app:pull"
	token := func(w *authWorld, user, password string) reply {
		q := url.Values{"service": {"wharf"}, "scope": {scope}}
		return w.do(t, "GET", "/token?"+q.Encode(), basic(user, password), nil)
	}
	hub := func(w *authWorld, user, password string) reply { return w.hubLogin(t, user, password) }
	web := func(w *authWorld, user, password string) reply {
		got, _ := w.webSignIn(t, user, password)
		return got
	}
	for _, tt := range []struct {
		surface string
		user    string
		login   func(w *authWorld, user, password string) reply
		errCode string // the spec error code of a 429, where the surface has one
	}{
		{"token endpoint", "tina", token, "TOOMANYREQUESTS"},
		{"Hub API login", "hugo", hub, ""},
		{"web sign-in", "wendy", web, ""},
	} {
		t.Run(tt.surface, func(t *testing.T) {
			// Five failures are free; the sixth blocks for a second.
			for i := range 6 {
				if got := tt.login(replicas[i%2], tt.user, "wrong-password"); got.status != http.StatusUnauthorized {
					t.Fatalf("guess %d on replica %d: %d %s; want 401", i+1, i%2, got.status, got.body)
				}
			}
			for i, w := range replicas {
				got := tt.login(w, tt.user, userPassword)
				if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") != "1" {
					t.Fatalf("replica %d after 6 failures spread over both: %d (Retry-After %q) %s; want 429, Retry-After 1",
						i, got.status, got.header.Get("Retry-After"), got.body)
				}
				if tt.errCode != "" && got.code() != tt.errCode {
					t.Fatalf("replica %d: error code %q, want %s", i, got.code(), tt.errCode)
				}
			}
			set.clock.Advance(time.Second) // the block is over: the password works on either
			if got := tt.login(wb, tt.user, userPassword); got.status >= 400 {
				t.Fatalf("after the block: %d %s", got.status, got.body)
			}
		})
	}
}

// getManifest GETs repo's manifest ref on w as admin.
func (w *authWorld) getManifest(t *testing.T, method, repo, ref string) reply {
	t.Helper()
	return w.do(t, method, "/v2/"+repo+"/manifests/"+ref, func(r *http.Request) {
		r.SetBasicAuth("admin", adminPassword)
		r.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	}, nil)
}

// A tag moved or deleted on one replica is seen so on the other by the
// very next request, though the other has just served the old state (and
// so would have it in any per-replica cache).
func TestReplicas_TagChangesAreSeenAtOnce(t *testing.T) {
	set := newReplicaSet(t)
	_, wa := set.start(t)
	_, wb := set.start(t)
	const repo = "admin/app"
	wantTag := func(step string, want digest.Digest) {
		t.Helper()
		for _, method := range []string{"GET", "HEAD", "GET"} {
			got := wb.getManifest(t, method, repo, "v1")
			if got.status != http.StatusOK || got.header.Get("Docker-Content-Digest") != want.String() {
				t.Fatalf("%s: %s on b = %d %s %s; want 200 %s", step, method, got.status, got.header.Get("Docker-Content-Digest"), got.body, want)
			}
		}
	}
	wa.push(t, repo)
	first := wa.manifest[repo]
	wantTag("pushed on a", first)
	if got := wb.getManifest(t, "GET", repo, first.String()); got.status != http.StatusOK {
		t.Fatalf("the first manifest by digest on b: %d %s", got.status, got.body)
	}

	wa.push(t, repo) // a new image under the same tag
	moved := wa.manifest[repo]
	if moved == first {
		t.Fatal("the second push made the same manifest")
	}
	wantTag("moved on a", moved)

	if got := wa.getManifest(t, "DELETE", repo, "v1"); got.status != http.StatusAccepted {
		t.Fatalf("DELETE the tag on a: %d %s", got.status, got.body)
	}
	for _, method := range []string{"GET", "HEAD"} {
		got := wb.getManifest(t, method, repo, "v1")
		if got.status != http.StatusNotFound || (method == "GET" && got.code() != "MANIFEST_UNKNOWN") {
			t.Fatalf("%s of the tag deleted on a, on b: %d %s; want 404 MANIFEST_UNKNOWN", method, got.status, got.body)
		}
	}
	tags := wb.do(t, "GET", "/v2/"+repo+"/tags/list", basic("admin", adminPassword), nil)
	if tags.status != http.StatusOK || strings.Contains(string(tags.body), `"v1"`) {
		t.Fatalf("b's tag list after the delete on a: %d %s", tags.status, tags.body)
	}

	// A manifest b has served (and cached by digest) and a deletes is gone
	// on b too.
	if got := wa.getManifest(t, "DELETE", repo, first.String()); got.status != http.StatusAccepted {
		t.Fatalf("DELETE the first manifest on a: %d %s", got.status, got.body)
	}
	if got := wb.getManifest(t, "GET", repo, first.String()); got.status != http.StatusNotFound || got.code() != "MANIFEST_UNKNOWN" {
		t.Fatalf("the manifest deleted on a, by digest on b: %d %s; want 404 MANIFEST_UNKNOWN", got.status, got.body)
	}
}

// Tokens, Hub API tokens and web sessions that one replica hands out
// work on the other: the signing keys and the sessions are in the
// database. A replica started after a key rotation signs with the new
// key, and the replicas started before accept its tokens at once.
func TestReplicas_ShareTokensAndSessions(t *testing.T) {
	set := newReplicaSet(t)
	a, wa := set.start(t)
	_, wb := set.start(t)
	const repo = "admin/app"
	wa.push(t, repo)

	bearerGet := func(w *authWorld, tok string) reply {
		return w.do(t, "GET", "/v2/"+repo+"/manifests/v1", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		}, nil)
	}
	fromA := wa.tokenFor(t, "admin", adminPassword, "repository:"+repo+":pull")
	if got := bearerGet(wb, fromA); got.status != http.StatusOK {
		t.Fatalf("a's /token token on b: %d %s", got.status, got.body)
	}

	hub := wa.hubLogin(t, "admin", adminPassword)
	var login struct{ Token string }
	if hub.status != http.StatusOK || json.Unmarshal(hub.body, &login) != nil || login.Token == "" {
		t.Fatalf("Hub API login on a: %d %s", hub.status, hub.body)
	}
	if got := wb.do(t, "GET", "/v2/repositories/"+repo, bearerAuth(login.Token), nil); got.status != http.StatusOK {
		t.Fatalf("a's Hub API token on b: %d %s", got.status, got.body)
	}

	signin, session := wa.webSignIn(t, "admin", adminPassword)
	if signin.status != http.StatusSeeOther || session == nil {
		t.Fatalf("web sign-in on a: %d %v %s; want 303 with a session cookie", signin.status, signin.header, signin.body)
	}
	settings := func(w *authWorld) reply {
		return w.webDo(t, "GET", "/settings", nil, session)
	}
	if got := settings(wb); got.status != http.StatusOK || !strings.Contains(string(got.body), "admin") {
		t.Fatalf("a's session on b: %d; want the account page", got.status)
	}
	// Signing out on b ends the session on a.
	m := csrfMeta.FindSubmatch(settings(wb).body)
	if m == nil {
		t.Fatal("the account page on b has no CSRF token")
	}
	csrf := string(m[1])
	out := wb.webDo(t, "POST", "/signout", url.Values{"csrf": {csrf}}, session)
	if out.status != http.StatusSeeOther {
		t.Fatalf("sign out on b: %d %s", out.status, out.body)
	}
	if got := settings(wa); got.status == http.StatusOK {
		t.Fatalf("the session signed out on b still opens the account page on a")
	}

	// Rotate the keys as `wharf keys rotate` does, beside the replicas.
	acc, err := server.OpenAccounts(context.Background(), a.Config, slog.New(slog.DiscardHandler))
	must(t, err)
	must(t, acc.Tokens.Rotate(t.Context()))
	must(t, acc.Close())
	_, wc := set.start(t)
	fromC := wc.tokenFor(t, "admin", adminPassword, "repository:"+repo+":pull")
	if kid(t, fromC) == kid(t, fromA) {
		t.Fatal("the replica started after the rotation signs with the old key")
	}
	for i, w := range []*authWorld{wa, wb} {
		if got := bearerGet(w, fromC); got.status != http.StatusOK {
			t.Fatalf("a token of the new key on replica %d, started before the rotation: %d %s", i, got.status, got.body)
		}
	}

	// b has just verified the admin's password (and remembers it); a
	// password change on a bites on b at the next request.
	if got := wb.getManifest(t, "GET", repo, "v1"); got.status != http.StatusOK {
		t.Fatalf("Basic auth on b: %d %s", got.status, got.body)
	}
	must(t, a.Auth.SetPassword(t.Context(), "admin", "changed-admin-password"))
	if got := wb.getManifest(t, "GET", repo, "v1"); got.status != http.StatusUnauthorized {
		t.Fatalf("the old password on b after a change on a: %d %s; want 401", got.status, got.body)
	}
}

// csrfMeta finds the CSRF token a signed-in page gives its forms.
var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// kid is a JWT's key id.
func kid(t *testing.T, token string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	must(t, err)
	var h struct{ Kid string }
	must(t, json.Unmarshal(b, &h))
	return h.Kid
}

// Pulls counted on each replica are summed in the database: each writes
// its batch, at the latest when it shuts down.
func TestReplicas_PullCountsAreSummed(t *testing.T) {
	set := newReplicaSet(t)
	a, wa := set.start(t)
	b, wb := set.start(t)
	const repo = "admin/app"
	wa.push(t, repo)
	for i, w := range []*authWorld{wa, wa, wb, wb, wb} {
		if got := w.getManifest(t, "GET", repo, "v1"); got.status != http.StatusOK {
			t.Fatalf("pull %d: %d %s", i+1, got.status, got.body)
		}
	}
	a.Stop()
	b.Stop()
	_, wc := set.start(t)
	got := wc.do(t, "GET", "/v2/repositories/"+repo, basic("admin", adminPassword), nil)
	var info struct {
		PullCount int64 `json:"pull_count"`
	}
	if got.status != http.StatusOK || json.Unmarshal(got.body, &info) != nil {
		t.Fatalf("Hub API repository on a third replica: %d %s", got.status, got.body)
	}
	if info.PullCount != 5 {
		t.Fatalf("pull_count = %d; want 5 (2 on a, 3 on b)", info.PullCount)
	}
}
