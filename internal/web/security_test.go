package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/server"
)

// readToken gives alice a read-only access token and returns its secret
// and id.
func readToken(t *testing.T, srv *registrytest.Server) (secret, id string) {
	t.Helper()
	secret, tok, err := srv.Auth.CreatePAT(context.Background(), "alice", "read only", auth.ScopeRead, time.Time{})
	must(t, err)
	return secret, tok.ID
}

// hubBearer logs in to the Hub API with secret and returns the bearer
// header.
func hubBearer(t *testing.T, srv *registrytest.Server, user, secret string) map[string]string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"identifier": user, "secret": secret})
	r, err := http.Post(srv.URL+"/v2/auth/token", "application/json", bytes.NewReader(body))
	must(t, err)
	defer r.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	must(t, json.NewDecoder(r.Body).Decode(&out))
	if r.StatusCode != http.StatusOK || out.AccessToken == "" {
		t.Fatalf("hub login as %s: %d", user, r.StatusCode)
	}
	return map[string]string{"Authorization": "Bearer " + out.AccessToken}
}

// withHeaders merges header maps.
func withHeaders(hs ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = v
		}
	}
	return out
}

// plantCSRF sets the CSRF cookie in b's jar to value, as a sibling
// subdomain or a plain-HTTP attacker can, and returns a form carrying it.
func plantCSRF(t *testing.T, b *browser, value string) {
	t.Helper()
	u, _ := url.Parse(b.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "wharf_csrf", Value: value, Path: "/"}})
}

func wantPassword(t *testing.T, srv *registrytest.Server, user, password string) {
	t.Helper()
	if _, err := srv.Auth.Authenticate(context.Background(), user, password, "192.0.2.1"); err != nil {
		t.Errorf("%s's password is no longer %q: %v", user, password, err)
	}
}

func wantTokens(t *testing.T, srv *registrytest.Server, user string, n int) {
	t.Helper()
	toks, err := srv.Auth.ListPATs(context.Background(), user)
	must(t, err)
	if len(toks) != n {
		t.Errorf("%s has %d access tokens, want %d", user, len(toks), n)
	}
	for _, tok := range toks {
		if !tok.RevokedAt.IsZero() {
			t.Errorf("token %s (%s) was revoked", tok.ID, tok.Name)
		}
	}
}

// The reviewer's exploit: a read-only access token, sent with Basic and
// as the "current password", changed the account's password.
func TestSettings_AccessTokenCannotChangePassword(t *testing.T) {
	srv := accountsWorld(t)
	pat, _ := readToken(t, srv)
	planted := strings.Repeat("x", 43)
	form := url.Values{"csrf": {planted}, "current": {pat}, "new": {"owned-pw-1"}, "confirm": {"owned-pw-1"}}
	cases := []struct {
		name   string
		header func() map[string]string
	}{
		{"basic with the token", func() map[string]string { return basic("alice", pat) }},
		{"basic with the password", func() map[string]string { return basic("alice", userPassword) }},
		{"bearer from a token login", func() map[string]string { return hubBearer(t, srv, "alice", pat) }},
		{"bearer from a password login", func() map[string]string { return hubBearer(t, srv, "alice", userPassword) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, srv)
			plantCSRF(t, b, planted)
			resp := b.do(http.MethodPost, "/settings/password", form, tc.header())
			if resp.code != http.StatusForbidden {
				t.Errorf("POST /settings/password = %d, want 403", resp.code)
			}
			if got := b.do(http.MethodGet, "/settings", nil, tc.header()).code; got != http.StatusForbidden {
				t.Errorf("GET /settings = %d, want 403", got)
			}
		})
	}
	wantPassword(t, srv, "alice", userPassword)
}

func TestSettings_CurrentPasswordMustBeThePassword(t *testing.T) {
	srv := accountsWorld(t)
	pat, _ := readToken(t, srv)
	b := newBrowser(t, srv)
	b.signIn("alice", userPassword)
	resp := b.post("/settings/password", url.Values{"current": {pat}, "new": {"owned-pw-1"}, "confirm": {"owned-pw-1"}})
	if resp.code != http.StatusForbidden || !strings.Contains(resp.body, "current password is wrong") {
		t.Errorf("an access token as the current password = %d, want 403", resp.code)
	}
	wantPassword(t, srv, "alice", userPassword)
}

func TestSettings_CurrentPasswordIsRateLimited(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	b.signIn("bob", userPassword)
	code := 0
	for range 10 {
		code = b.post("/settings/password", url.Values{"current": {"guess-guess"}, "new": {"owned-pw-1"}, "confirm": {"owned-pw-1"}}).code
		if code == http.StatusTooManyRequests {
			break
		}
	}
	if code != http.StatusTooManyRequests {
		t.Fatalf("after 10 wrong current passwords: %d, want 429", code)
	}
	// Blocked, the right password waits too: the form is no faster oracle.
	if code := b.post("/settings/password", url.Values{"current": {userPassword}, "new": {"owned-pw-1"}, "confirm": {"owned-pw-1"}}).code; code != http.StatusTooManyRequests {
		t.Errorf("the right password while blocked = %d, want 429", code)
	}
}

// A read-only token, or a bearer, minted a read-write-delete token (or
// revoked one) through the HTML forms.
func TestSettings_TokenFormsNeedASession(t *testing.T) {
	srv := accountsWorld(t)
	pat, id := readToken(t, srv)
	planted := strings.Repeat("y", 43)
	for _, tc := range []struct {
		name   string
		header func() map[string]string
	}{
		{"basic with a read token", func() map[string]string { return basic("alice", pat) }},
		{"bearer from a read token", func() map[string]string { return hubBearer(t, srv, "alice", pat) }},
		{"bearer from the password", func() map[string]string { return hubBearer(t, srv, "alice", userPassword) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, srv)
			plantCSRF(t, b, planted)
			h := tc.header()
			resp := b.do(http.MethodPost, "/settings/tokens", url.Values{"csrf": {planted}, "name": {"mine now"}, "scope": {"read-write-delete"}}, h)
			if resp.code != http.StatusForbidden || patRE.MatchString(resp.body) {
				t.Errorf("create a token = %d, want 403 and no secret", resp.code)
			}
			if resp := b.do(http.MethodPost, "/settings/tokens/"+id+"/revoke", url.Values{"csrf": {planted}}, h); resp.code != http.StatusForbidden {
				t.Errorf("revoke a token = %d, want 403", resp.code)
			}
		})
	}
	wantTokens(t, srv, "alice", 1)
}

// docker login -p $READ_PAT stores a refresh token (client_id docker,
// parent the token, scope read); as a session cookie it minted a
// read-write-delete token through the Hub API.
func TestSession_RefreshTokensOtherThanSessionsAreNot(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword),
		registrytest.WithConfig(func(c *config.Config) { c.Auth.LoginRefreshTokens = true }))
	seedAccounts(t, srv)
	pat, _ := readToken(t, srv)
	identity := func(secret, clientID string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/token?service=wharf&offline_token=true&client_id="+clientID, nil)
		req.SetBasicAuth("alice", secret)
		r, err := http.DefaultClient.Do(req)
		must(t, err)
		defer r.Body.Close()
		var out struct {
			RefreshToken string `json:"refresh_token"`
		}
		must(t, json.NewDecoder(r.Body).Decode(&out))
		if out.RefreshToken == "" {
			t.Fatalf("no refresh token from /token (%d)", r.StatusCode)
		}
		return out.RefreshToken
	}
	for _, tc := range []struct{ name, secret, clientID string }{
		{"docker login with a read token", pat, "docker"},
		{"a token login posing as the web client", pat, "wharf-web"},
		{"docker login with the password", userPassword, "docker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, srv)
			u, _ := url.Parse(srv.URL)
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "wharf_session", Value: identity(tc.secret, tc.clientID), Path: "/"}})
			if resp := b.get("/settings"); resp.code != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), "/signin") {
				t.Errorf("GET /settings = %d %q, want a sign-in redirect", resp.code, resp.header.Get("Location"))
			}
			// Anonymous, so 401 (not 403 for want of a CSRF token: the
			// cookie must not count as a session at all).
			resp := b.do(http.MethodPost, "/v2/access-tokens", nil, map[string]string{"Content-Type": "application/json", "X-CSRF-Token": b.csrf()})
			if resp.code != http.StatusUnauthorized {
				t.Errorf("POST /v2/access-tokens = %d %s, want 401", resp.code, resp.body)
			}
		})
	}
	wantTokens(t, srv, "alice", 1)
}

func TestSignin_NextStaysOnThisSite(t *testing.T) {
	srv := accountsWorld(t)
	for _, tc := range []struct{ next, want string }{
		{"/r/alice/pub/tags?sort=name", "/r/alice/pub/tags?sort=name"},
		{"/settings", "/settings"},
		{"/%09/evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/%0a/evil.example", "/"},
		{"//evil.example", "/"},
		{"/%2F/evil.example", "/"},
		{"/\\evil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"", "/"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			b := newBrowser(t, srv)
			resp := b.post("/signin", url.Values{"username": {"bob"}, "password": {userPassword}, "next": {tc.next}})
			if resp.code != http.StatusSeeOther || resp.header.Get("Location") != tc.want {
				t.Errorf("sign in with next=%q = %d to %q, want 303 to %q", tc.next, resp.code, resp.header.Get("Location"), tc.want)
			}
		})
	}
}

// A CSRF cookie planted by a sibling subdomain or a plain-HTTP attacker
// must not authorise a signed-in browser's forms or API calls.
func TestCSRF_PlantedCookieDoesNotPassForASession(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	b.signIn("alice", userPassword)
	planted := strings.Repeat("z", 43)
	plantCSRF(t, b, planted)
	withPlanted := func() url.Values { return url.Values{"csrf": {planted}} }

	form := withPlanted()
	form.Set("name", "attacker's")
	form.Set("scope", "read-write-delete")
	if resp := b.do(http.MethodPost, "/settings/tokens", form, nil); resp.code != http.StatusForbidden {
		t.Errorf("create a token with a planted CSRF cookie = %d, want 403", resp.code)
	}
	form = withPlanted()
	form.Set("op", "delete")
	if resp := b.do(http.MethodPost, "/r/alice/pub/tags/v1", form, nil); resp.code != http.StatusForbidden {
		t.Errorf("delete a tag with a planted CSRF cookie = %d, want 403", resp.code)
	}
	if resp := b.do(http.MethodDelete, "/v2/repositories/alice/pub/tags/v1/", nil, map[string]string{"X-CSRF-Token": planted}); resp.code != http.StatusForbidden {
		t.Errorf("API delete with a planted CSRF token = %d, want 403", resp.code)
	}
	// Another session's token is no better.
	bob := newBrowser(t, srv)
	bob.signIn("bob", userPassword)
	if resp := b.do(http.MethodDelete, "/v2/repositories/alice/pub/tags/v1/", nil, map[string]string{"X-CSRF-Token": bob.csrf()}); resp.code != http.StatusForbidden {
		t.Errorf("API delete with bob's CSRF token = %d, want 403", resp.code)
	}
	wantTokens(t, srv, "alice", 0)
	if got := b.get("/r/alice/pub/tags/v1").code; got != http.StatusOK {
		t.Errorf("the tag after the forged deletes = %d, want 200", got)
	}
	// The session's own token, from the page, works.
	if resp := b.do(http.MethodDelete, "/v2/repositories/alice/pub/tags/v1/", nil, map[string]string{"X-CSRF-Token": b.csrf()}); resp.code != http.StatusNoContent {
		t.Errorf("API delete with the page's token = %d, want 204", resp.code)
	}
}

func TestCSRF_TokenChangesWithTheSession(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	anon := b.csrf()
	b.signIn("alice", userPassword)
	first := b.csrf()
	if first == anon {
		t.Error("the signed-in token is the anonymous CSRF cookie")
	}
	if resp := b.post("/signout", url.Values{}); resp.code != http.StatusSeeOther {
		t.Fatalf("sign out = %d", resp.code)
	}
	b.signIn("alice", userPassword)
	if b.csrf() == first {
		t.Error("a new session kept the old session's CSRF token")
	}
}

// Over TLS the cookies take the __Host- prefix, and a bare-named cookie,
// which a sibling subdomain could set, is ignored.
func TestCookies_HostPrefixOverTLS(t *testing.T) {
	srv := accountsWorld(t)
	ts := httptest.NewTLSServer(srv.Server.Config.Handler)
	t.Cleanup(ts.Close)
	tlsSrv := &registrytest.Server{Server: ts, Auth: srv.Auth}
	b := newBrowser(t, tlsSrv)
	b.c.Transport = ts.Client().Transport

	anon := b.get("/signin")
	wantCookie(t, anon.header, "__Host-wharf_csrf=", "Secure", "HttpOnly", "Path=/")
	resp := b.post("/signin", url.Values{"username": {"alice"}, "password": {userPassword}, "next": {"/"}})
	if resp.code != http.StatusSeeOther {
		t.Fatalf("sign in over TLS = %d", resp.code)
	}
	cookie := wantCookie(t, resp.header, "__Host-wharf_session=", "Secure", "HttpOnly", "Path=/", "SameSite=Lax")
	if strings.Contains(strings.ToLower(cookie), "domain=") {
		t.Errorf("session cookie %q has a Domain", cookie)
	}
	if got := b.get("/settings").code; got != http.StatusOK {
		t.Fatalf("settings over TLS = %d", got)
	}

	secret := strings.TrimPrefix(strings.Split(cookie, ";")[0], "__Host-wharf_session=")
	bare := newBrowser(t, tlsSrv)
	bare.c.Transport = ts.Client().Transport
	u, _ := url.Parse(ts.URL)
	bare.c.Jar.SetCookies(u, []*http.Cookie{{Name: "wharf_session", Value: secret, Path: "/"}})
	if resp := bare.get("/settings"); resp.code != http.StatusSeeOther {
		t.Errorf("settings over TLS with a bare-named session cookie = %d, want a sign-in redirect", resp.code)
	}
}

// wantCookie returns the Set-Cookie line starting with the prefix of
// attrs[0] and checks it has the others.
func wantCookie(t *testing.T, h http.Header, attrs ...string) string {
	t.Helper()
	for _, c := range h.Values("Set-Cookie") {
		if strings.HasPrefix(c, attrs[0]) {
			for _, a := range attrs[1:] {
				if !strings.Contains(c, a) {
					t.Errorf("cookie %q lacks %s", c, a)
				}
			}
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", attrs[0], h.Values("Set-Cookie"))
	return ""
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count is how many lines hold every one of subs.
func (l *logBuffer) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.SplitSeq(l.buf.String(), "\n") {
		all := line != ""
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// loggedAccountsWorld is accountsWorld with the server's log kept.
func loggedAccountsWorld(t *testing.T) (*registrytest.Server, *logBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Auth.Mode = config.AuthToken
	cfg.Auth.AdminPassword = adminPassword
	cfg.Resolve()
	must(t, cfg.Validate())
	logs := &logBuffer{}
	s, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	must(t, err)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := s.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Log(err)
		}
	})
	srv := &registrytest.Server{Server: hs, DataDir: cfg.DataDir, Config: cfg, Auth: s.Accounts()}
	seedAccounts(t, srv)
	return srv, logs
}

// Page views asked the authoriser about push and delete rights and each
// refusal was logged as "access denied": the UI's questions are not
// requests. A refused change still is.
func TestAudit_PageViewsLogNoRefusals(t *testing.T) {
	srv, logs := loggedAccountsWorld(t)
	bob := newBrowser(t, srv)
	bob.signIn("bob", userPassword)
	for _, p := range []string{"/", "/?sort=name", "/u/alice", "/r/alice/pub", "/r/alice/pub/tags", "/r/alice/pub/tags/v1", "/r/alice/pub/settings"} {
		bob.get(p)
	}
	bob.getJSON("/v2/namespaces/alice/repositories", nil, &struct{}{})
	if n := logs.count("access denied"); n != 0 {
		t.Errorf("%d access-denied lines after page views, want none", n)
	}
	if resp := bob.post("/r/alice/pub/tags/v1", url.Values{"op": {"delete"}}); resp.code != http.StatusForbidden {
		t.Fatalf("bob deletes alice's tag = %d, want 403", resp.code)
	}
	if n := logs.count("access denied", "user=bob", "repository:alice/pub:delete"); n != 1 {
		t.Errorf("%d access-denied lines for bob's refused delete, want 1", n)
	}
}
