package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registrytest"
)

// accountsWorld is a registry with accounts: alice owns alice/pub (public)
// and alice/priv; bob owns nothing; acme (an organisation with carol as
// admin) owns acme/secret.
func accountsWorld(t *testing.T) *registrytest.Server {
	t.Helper()
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	seedAccounts(t, srv)
	return srv
}

// seedAccounts gives srv accountsWorld's users, organisation and images.
func seedAccounts(t *testing.T, srv *registrytest.Server) {
	t.Helper()
	ctx := context.Background()
	a := srv.Auth
	for _, u := range []string{"alice", "bob", "carol"} {
		must(t, a.AddUser(ctx, u, userPassword, false))
	}
	must(t, a.AddOrg(ctx, "acme"))
	must(t, a.AddMember(ctx, "acme", "carol", auth.RoleAdmin))
	push(t, srv, "alice/pub:v1", testImage(t, "amd64"), remoteOpts("alice", userPassword)...)
	push(t, srv, "alice/priv:v1", testImage(t, "amd64"), remoteOpts("alice", userPassword)...)
	push(t, srv, "acme/secret:v1", testImage(t, "amd64"), remoteOpts("carol", userPassword)...)
	must(t, a.SetVisibility(ctx, "alice/pub", auth.Public))
	must(t, a.SetVisibility(ctx, "alice/priv", auth.Private))
	must(t, a.SetVisibility(ctx, "acme/secret", auth.Private))
}

func TestExplore_ShowsOnlyWhatTheViewerMayPull(t *testing.T) {
	srv := accountsWorld(t)
	cases := []struct {
		user       string
		want, hide []string
	}{
		{"", []string{"alice/pub"}, []string{"alice/priv", "acme/secret"}},
		{"bob", []string{"alice/pub"}, []string{"alice/priv", "acme/secret"}},
		{"alice", []string{"alice/pub", "alice/priv"}, []string{"acme/secret"}},
		{"carol", []string{"alice/pub", "acme/secret"}, []string{"alice/priv"}},
		{"admin", []string{"alice/pub", "alice/priv", "acme/secret"}, nil},
	}
	for _, tc := range cases {
		t.Run("as "+tc.user, func(t *testing.T) {
			b := newBrowser(t, srv)
			if tc.user != "" {
				pw := userPassword
				if tc.user == "admin" {
					pw = adminPassword
				}
				b.signIn(tc.user, pw)
			}
			page := text(b.get("/?sort=name").body)
			wantContains(t, "explore", page, tc.want...)
			wantLacks(t, "explore", page, tc.hide...)
			for _, repo := range tc.hide {
				if got := b.get("/r/" + repo).code; got != http.StatusNotFound && got != http.StatusSeeOther {
					t.Errorf("GET /r/%s = %d, want 404 (or a sign-in redirect)", repo, got)
				}
			}
		})
	}
}

func TestExplore_BadgesPrivateRepositories(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	b.signIn("alice", userPassword)
	page := b.get("/?sort=name").body
	wantContains(t, "explore", page, `href="/r/alice/priv">alice/priv</a> <span class="badge private">Private</span>`)
	wantLacks(t, "explore", page, `href="/r/alice/pub">alice/pub</a> <span class="badge private">`)
}

func TestExplore_PushedByIsRecorded(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	b.signIn("alice", userPassword)
	page := text(b.get("/r/alice/priv/tags").body)
	wantContains(t, "tags", page, "less than a minute ago by alice")
}

func TestSession_CookieFlagsAndSignOutRevokes(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	resp := b.post("/signin", url.Values{"username": {"alice"}, "password": {"wrong-password"}, "next": {"/"}})
	if resp.code != http.StatusUnauthorized || !strings.Contains(resp.body, "Incorrect username or password") {
		t.Fatalf("bad password: %d", resp.code)
	}
	resp = b.post("/signin", url.Values{"username": {"alice"}, "password": {userPassword}, "next": {"//evil.example/"}})
	if resp.code != http.StatusSeeOther || resp.header.Get("Location") != "/" {
		t.Fatalf("sign in = %d to %q, want 303 to / (an off-site next is dropped)", resp.code, resp.header.Get("Location"))
	}
	cookie := resp.header.Get("Set-Cookie")
	for _, attr := range []string{"wharf_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	secret := strings.TrimPrefix(strings.Split(cookie, ";")[0], "wharf_session=")
	if got := text(b.get("/settings").body); !strings.Contains(got, "Personal access tokens") {
		t.Fatalf("settings after sign-in: %.200s", got)
	}
	if resp := b.post("/signout", url.Values{}); resp.code != http.StatusSeeOther {
		t.Fatalf("sign out = %d", resp.code)
	}
	// The old cookie, replayed, no longer signs anyone in.
	replay := newBrowser(t, srv)
	u, _ := url.Parse(srv.URL)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "wharf_session", Value: secret}})
	if resp := replay.get("/settings"); resp.code != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), "/signin") {
		t.Errorf("settings with a signed-out session = %d %q, want a sign-in redirect", resp.code, resp.header.Get("Location"))
	}
}

var patRE = regexp.MustCompile(`wharf_pat_[A-Za-z0-9_-]+`)

func TestAccessTokens_CreateUseRevoke(t *testing.T) {
	srv := accountsWorld(t)
	b := newBrowser(t, srv)
	b.signIn("alice", userPassword)
	resp := b.post("/settings/tokens", url.Values{"name": {"ci <runner>"}, "scope": {"read-write"}, "expires": {"30"}})
	if resp.code != http.StatusOK {
		t.Fatalf("create token = %d", resp.code)
	}
	secret := patRE.FindString(resp.body)
	if secret == "" {
		t.Fatal("the new token's secret is not shown")
	}
	wantContains(t, "token page", resp.body, "ci &lt;runner&gt;", "wharf login "+hostOf(srv)+" -u alice")
	if again := b.get("/settings").body; strings.Contains(again, secret) {
		t.Error("the secret is shown a second time")
	}

	push(t, srv, "alice/ci:v1", testImage(t, "arm64"), remoteOpts("alice", secret)...)
	wantContains(t, "tags", text(b.get("/r/alice/ci/tags").body), "linux/arm64", "by alice")

	toks, err := srv.Auth.ListPATs(context.Background(), "alice")
	must(t, err)
	if len(toks) != 1 || toks[0].LastUsed.IsZero() {
		t.Fatalf("tokens = %+v, want one, used", toks)
	}
	wantContains(t, "settings", text(b.get("/settings").body), "read-write", "Active")
	if resp := b.post("/settings/tokens/"+toks[0].ID+"/revoke", url.Values{}); resp.code != http.StatusSeeOther {
		t.Fatalf("revoke = %d", resp.code)
	}
	wantContains(t, "settings", text(b.get("/settings").body), "Revoked")
	ref, err := name.ParseReference(hostOf(srv) + "/alice/ci:v2")
	must(t, err)
	if err := remote.Write(ref, testImage(t, "arm64"), remoteOpts("alice", secret)...); err == nil {
		t.Error("a push with the revoked token succeeded")
	}
}

func TestSettings_ChangePasswordKeepsThisSession(t *testing.T) {
	srv := accountsWorld(t)
	other := newBrowser(t, srv)
	other.signIn("bob", userPassword)
	b := newBrowser(t, srv)
	b.signIn("bob", userPassword)
	resp := b.post("/settings/password", url.Values{"current": {userPassword}, "new": {"brand-new-pw"}, "confirm": {"brand-new-pw"}})
	if resp.code != http.StatusSeeOther {
		t.Fatalf("change password = %d %s", resp.code, text(resp.body))
	}
	if got := b.get("/settings").code; got != http.StatusOK {
		t.Errorf("this session after the change = %d, want 200", got)
	}
	if got := other.get("/settings").code; got != http.StatusSeeOther {
		t.Errorf("another session after the change = %d, want a sign-in redirect", got)
	}
}

func TestRepoSettings_VisibilityNeedsAdminRights(t *testing.T) {
	srv := accountsWorld(t)
	bob := newBrowser(t, srv)
	bob.signIn("bob", userPassword)
	if resp := bob.post("/r/alice/pub/settings", url.Values{"op": {"visibility"}, "visibility": {"private"}}); resp.code != http.StatusForbidden {
		t.Errorf("bob changes alice's visibility = %d, want 403", resp.code)
	}
	if resp := bob.post("/r/alice/pub/tags/v1", url.Values{"op": {"delete"}}); resp.code != http.StatusForbidden {
		t.Errorf("bob deletes alice's tag = %d, want 403", resp.code)
	}
	wantLacks(t, "bob's view of alice/pub", bob.get("/r/alice/pub/tags").body, "Delete tag")

	alice := newBrowser(t, srv)
	alice.signIn("alice", userPassword)
	if resp := alice.post("/r/alice/pub/settings", url.Values{"op": {"visibility"}, "visibility": {"private"}}); resp.code != http.StatusSeeOther {
		t.Fatalf("alice changes visibility = %d", resp.code)
	}
	wantContains(t, "alice/pub", alice.get("/r/alice/pub").body, "badge private")
	if got := newBrowser(t, srv).get("/r/alice/pub").code; got != http.StatusSeeOther {
		t.Errorf("anonymous view of a now private repository = %d, want a sign-in redirect", got)
	}
}

func TestNamespacePage_MembersForOrgAdmins(t *testing.T) {
	srv := accountsWorld(t)
	must(t, srv.Auth.AddMember(context.Background(), "acme", "bob", auth.RoleRead))
	carol := newBrowser(t, srv)
	carol.signIn("carol", userPassword)
	page := text(carol.get("/u/acme").body)
	wantContains(t, "acme as its admin", page, "acme/secret", "Members", "bob read", "carol admin")

	bob := newBrowser(t, srv)
	bob.signIn("bob", userPassword)
	page = text(bob.get("/u/acme").body)
	wantContains(t, "acme as a reader", page, "acme/secret")
	wantLacks(t, "acme as a reader", page, "Members")

	anon := text(newBrowser(t, srv).get("/u/acme").body)
	wantLacks(t, "acme anonymously", anon, "acme/secret", "Members")
	wantContains(t, "acme anonymously", anon, "no repositories you may see")
}

func TestAccountPages_OpenRegistryExplains(t *testing.T) {
	srv := registrytest.NewServer(t)
	b := newBrowser(t, srv)
	resp := b.get("/settings")
	if resp.code != http.StatusNotFound || !strings.Contains(resp.body, "--auth=none") {
		t.Errorf("settings on an open registry = %d, want 404 saying why", resp.code)
	}
	if resp := b.get("/signin"); resp.code != http.StatusSeeOther {
		t.Errorf("sign-in page on an open registry = %d, want a redirect home", resp.code)
	}
}
