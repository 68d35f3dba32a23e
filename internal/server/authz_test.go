package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

const (
	adminPassword = "admin-password"
	userPassword  = "user-password"
)

// authWorld is a registry with accounts: alice owns alice/, the
// organisation acme has carol (read), dave (write) and erin (admin), bob
// is nobody's member, and alice holds access tokens of every kind.
type authWorld struct {
	srv      *registrytest.Server
	repos    []string
	public   map[string]bool
	manifest map[string]digest.Digest // repo → digest of tag v1
	layer    map[string]digest.Digest // repo → its layer
	body     map[string][]byte        // repo → manifest of v1
	subjects []subject
}

// subject is one kind of caller and the rights the matrix expects it to
// have, written out by hand rather than asked of auth.
type subject struct {
	name         string
	user, secret string // empty user: anonymous
	badCreds     bool   // revoked or expired: refused outright
	rights       func(repo string, public bool) []string
}

func pullIfPublic(_ string, public bool) []string {
	if public {
		return []string{"pull"}
	}
	return nil
}

func inNamespace(ns string, own []string) func(string, bool) []string {
	return func(repo string, public bool) []string {
		if strings.HasPrefix(repo, ns+"/") {
			return own
		}
		return pullIfPublic(repo, public)
	}
}

var everything = []string{"pull", "push", "delete"}

func newAuthWorld(t *testing.T, opts ...registrytest.Option) *authWorld {
	t.Helper()
	ctx := context.Background()
	clock := clocktest.New()
	srv := registrytest.NewServer(t, append([]registrytest.Option{registrytest.WithAuth(adminPassword), registrytest.WithClock(clock.Now)}, opts...)...)
	a := srv.Auth
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		must(t, a.AddUser(ctx, u, userPassword, false))
	}
	must(t, a.AddOrg(ctx, "acme"))
	must(t, a.AddMember(ctx, "acme", "carol", auth.RoleRead))
	must(t, a.AddMember(ctx, "acme", "dave", auth.RoleWrite))
	must(t, a.AddMember(ctx, "acme", "erin", auth.RoleAdmin))
	readPAT, _, err := a.CreatePAT(ctx, "alice", "ci-read", auth.ScopeRead, time.Time{})
	must(t, err)
	rwPAT, _, err := a.CreatePAT(ctx, "alice", "ci-rw", auth.ScopeReadWrite, time.Time{})
	must(t, err)
	revokedPAT, revoked, err := a.CreatePAT(ctx, "alice", "old", auth.ScopeReadWriteDelete, time.Time{})
	must(t, err)
	must(t, a.RevokePAT(ctx, "alice", revoked.ID))
	expiredPAT, _, err := a.CreatePAT(ctx, "alice", "short", auth.ScopeReadWriteDelete, clock.Now().Add(time.Minute))
	must(t, err)

	w := &authWorld{
		srv:      srv,
		repos:    []string{"alice/pub", "alice/priv", "acme/pub", "acme/priv"},
		public:   map[string]bool{"alice/pub": true, "acme/pub": true},
		manifest: map[string]digest.Digest{}, layer: map[string]digest.Digest{}, body: map[string][]byte{},
	}
	for _, repo := range w.repos {
		w.push(t, repo)
		v := auth.Private
		if w.public[repo] {
			v = auth.Public
		}
		must(t, a.SetVisibility(ctx, repo, v))
	}
	w.subjects = []subject{
		{name: "anonymous", rights: pullIfPublic},
		{name: "other user", user: "bob", secret: userPassword, rights: pullIfPublic},
		{name: "org read member", user: "carol", secret: userPassword, rights: inNamespace("acme", []string{"pull"})},
		{name: "org write member", user: "dave", secret: userPassword, rights: inNamespace("acme", []string{"pull", "push"})},
		{name: "org admin member", user: "erin", secret: userPassword, rights: inNamespace("acme", everything)},
		{name: "owner", user: "alice", secret: userPassword, rights: inNamespace("alice", everything)},
		{name: "admin", user: "admin", secret: adminPassword, rights: func(string, bool) []string { return everything }},
		{name: "read token", user: "alice", secret: readPAT, rights: inNamespace("alice", []string{"pull"})},
		{name: "read-write token", user: "alice", secret: rwPAT, rights: inNamespace("alice", []string{"pull", "push"})},
		{name: "revoked token", user: "alice", secret: revokedPAT, badCreds: true},
		{name: "expired token", user: "alice", secret: expiredPAT, badCreds: true},
	}
	clock.Advance(2 * time.Minute) // the short token has expired
	return w
}

// push stores an image (config, one layer, manifest tagged v1) as admin.
func (w *authWorld) push(t *testing.T, repo string) {
	t.Helper()
	// Larger than registry.DefaultSmallBlobMax, as layers are: its bytes
	// are in the blob store (the redirect tests send clients there).
	layer := make([]byte, registry.DefaultSmallBlobMax+512)
	_, _ = rand.Read(layer)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	for _, blob := range [][]byte{config, layer} {
		d := digest.FromBytes(blob)
		resp := w.do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), basic("admin", adminPassword), blob)
		if resp.status != http.StatusCreated {
			t.Fatalf("push blob to %s: %d %s", repo, resp.status, resp.body)
		}
	}
	body := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"%s"},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s"}]}`,
		len(config), digest.FromBytes(config), len(layer), digest.FromBytes(layer))
	resp := w.do(t, "PUT", "/v2/"+repo+"/manifests/v1", basic("admin", adminPassword), body)
	if resp.status != http.StatusCreated {
		t.Fatalf("push manifest to %s: %d %s", repo, resp.status, resp.body)
	}
	w.manifest[repo], w.layer[repo], w.body[repo] = digest.FromBytes(body), digest.FromBytes(layer), body
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// code is the first error code of a spec error body, or "".
func (r reply) code() string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	_ = json.Unmarshal(r.body, &e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func basic(user, secret string) func(*http.Request) {
	return func(r *http.Request) {
		if user != "" {
			r.SetBasicAuth(user, secret)
		}
	}
}

func bearerAuth(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func (w *authWorld) do(t *testing.T, method, path string, authz func(*http.Request), body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(path, "/manifests/") && method == "PUT" {
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	}
	authz(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// token asks the token endpoint for every action on repo.
func (w *authWorld) token(t *testing.T, s subject, repo string) (string, reply) {
	t.Helper()
	q := url.Values{"service": {"wharf"}, "scope": {"repository:" + repo + ":pull,push,delete"}}
	resp := w.do(t, "GET", "/token?"+q.Encode(), basic(s.user, s.secret), nil)
	var tok struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(resp.body, &tok)
	return tok.Token, resp
}

// route is one API call on a repository: what it needs and what it
// answers when allowed.
type route struct {
	name   string
	method string
	path   func(w *authWorld, repo string) string
	body   func(w *authWorld, repo string) []byte
	needs  []string
	ok     int
}

var unknownDigest = digest.FromString("nothing was ever pushed with this content")

var routes = []route{
	{name: "tags/list", method: "GET", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/tags/list" }, needs: []string{"pull"}, ok: 200},
	{name: "manifest GET", method: "GET", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/manifests/v1" }, needs: []string{"pull"}, ok: 200},
	{name: "manifest HEAD", method: "HEAD", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/manifests/v1" }, needs: []string{"pull"}, ok: 200},
	{name: "blob GET", method: "GET", path: func(w *authWorld, r string) string { return "/v2/" + r + "/blobs/" + w.layer[r].String() }, needs: []string{"pull"}, ok: 200},
	{name: "blob HEAD", method: "HEAD", path: func(w *authWorld, r string) string { return "/v2/" + r + "/blobs/" + w.layer[r].String() }, needs: []string{"pull"}, ok: 200},
	{name: "referrers", method: "GET", path: func(w *authWorld, r string) string { return "/v2/" + r + "/referrers/" + w.manifest[r].String() }, needs: []string{"pull"}, ok: 200},
	{name: "upload start", method: "POST", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/blobs/uploads/" }, needs: []string{"pull", "push"}, ok: 202},
	{name: "upload status", method: "GET", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/blobs/uploads/no-such-upload" }, needs: []string{"pull", "push"}, ok: 404},
	{name: "upload cancel", method: "DELETE", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/blobs/uploads/no-such-upload" }, needs: []string{"pull", "push"}, ok: 404},
	{name: "manifest PUT", method: "PUT", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/manifests/v1" },
		body: func(w *authWorld, r string) []byte { return w.body[r] }, needs: []string{"pull", "push"}, ok: 201},
	{name: "manifest DELETE", method: "DELETE", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/manifests/" + unknownDigest.String() }, needs: []string{"delete"}, ok: 404},
	{name: "blob DELETE", method: "DELETE", path: func(_ *authWorld, r string) string { return "/v2/" + r + "/blobs/" + unknownDigest.String() }, needs: []string{"delete"}, ok: 404},
}

// TestAuth_PermissionMatrix: every repository route × every kind of
// caller × public and private repositories, with HTTP Basic on each
// request and with a bearer token from the token endpoint, answers
// exactly the status and error code the caller's rights call for.
func TestAuth_PermissionMatrix(t *testing.T) {
	w := newAuthWorld(t)
	for _, s := range w.subjects {
		if s.badCreds {
			continue // TestAuth_RefusedCredentials covers them
		}
		for _, repo := range w.repos {
			var token string
			if s.user != "" {
				tok, resp := w.token(t, s, repo)
				if resp.status != http.StatusOK {
					t.Fatalf("%s: token endpoint = %d %s", s.name, resp.status, resp.body)
				}
				token = tok
			} else {
				token, _ = w.token(t, s, repo)
			}
			for _, rt := range routes {
				var body []byte
				if rt.body != nil {
					body = rt.body(w, repo)
				}
				path := rt.path(w, repo)
				allowed := containsAll(s.rights(repo, w.public[repo]), rt.needs)

				got := w.do(t, rt.method, path, basic(s.user, s.secret), body)
				wantStatus, wantCode := rt.ok, ""
				switch {
				case allowed:
				case s.user == "":
					wantStatus, wantCode = 401, "UNAUTHORIZED"
				default:
					wantStatus, wantCode = 403, "DENIED"
				}
				check(t, fmt.Sprintf("basic %s %s %s", s.name, rt.name, repo), got, rt.method, wantStatus, wantCode)

				got = w.do(t, rt.method, path, bearerAuth(token), body)
				if !allowed {
					wantStatus, wantCode = 401, "DENIED"
				}
				check(t, fmt.Sprintf("bearer %s %s %s", s.name, rt.name, repo), got, rt.method, wantStatus, wantCode)
				if !allowed && !strings.Contains(got.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("bearer %s %s %s: WWW-Authenticate %q lacks insufficient_scope", s.name, rt.name, repo, got.header.Get("WWW-Authenticate"))
				}
			}
		}
	}
}

// TestAuth_RefusedCredentials: a revoked or an expired access token is
// refused by the token endpoint and on every kind of call, whatever the
// repository's visibility, without locking the account; wrong passwords
// do lock it from that address: after 6, even the right one gets 429
// TOOMANYREQUESTS with Retry-After.
func TestAuth_RefusedCredentials(t *testing.T) {
	for _, name := range []string{"revoked token", "expired token"} {
		t.Run(name, func(t *testing.T) {
			w := newAuthWorld(t)
			i := slices.IndexFunc(w.subjects, func(s subject) bool { return s.name == name })
			s := w.subjects[i]
			_, tok := w.token(t, s, "alice/pub")
			check(t, "token endpoint", tok, "GET", 401, "UNAUTHORIZED")
			calls := []struct{ method, path string }{
				{"GET", "/v2/"},
				{"GET", "/v2/alice/pub/manifests/v1"},
				{"HEAD", "/v2/alice/priv/blobs/" + w.layer["alice/priv"].String()},
				{"PUT", "/v2/alice/priv/manifests/v1"},
				{"DELETE", "/v2/alice/priv/manifests/" + unknownDigest.String()},
				{"GET", "/v2/alice/priv/tags/list"},
			}
			for _, c := range calls {
				got := w.do(t, c.method, c.path, basic(s.user, s.secret), w.body["alice/priv"])
				check(t, c.method+" "+c.path, got, c.method, 401, "UNAUTHORIZED")
			}
			got := w.do(t, "GET", "/v2/alice/priv/tags/list", basic("alice", userPassword), nil)
			check(t, "the password after token failures", got, "GET", 200, "")
		})
	}
	t.Run("wrong passwords", func(t *testing.T) {
		w := newAuthWorld(t)
		for range 6 {
			got := w.do(t, "GET", "/v2/alice/priv/tags/list", basic("alice", "not-her-password"), nil)
			check(t, "wrong password", got, "GET", 401, "UNAUTHORIZED")
		}
		got := w.do(t, "GET", "/v2/alice/priv/tags/list", basic("alice", userPassword), nil)
		check(t, "right password after 6 failures", got, "GET", 429, "TOOMANYREQUESTS")
		if got.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	})
}

// TestAuth_CatalogAndBase: /v2/ and the catalog need a caller, and the
// catalog lists only what that caller may pull.
func TestAuth_CatalogAndBase(t *testing.T) {
	w := newAuthWorld(t)
	for _, s := range w.subjects {
		if s.badCreds {
			continue
		}
		base := w.do(t, "GET", "/v2/", basic(s.user, s.secret), nil)
		cat := w.do(t, "GET", "/v2/_catalog", basic(s.user, s.secret), nil)
		if base.header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("%s /v2/: no Docker-Distribution-API-Version header", s.name)
		}
		if s.user == "" {
			check(t, s.name+" /v2/", base, "GET", 401, "UNAUTHORIZED")
			check(t, s.name+" catalog", cat, "GET", 401, "UNAUTHORIZED")
			if !strings.HasPrefix(base.header.Get("WWW-Authenticate"), `Bearer realm="`+w.srv.URL+`/token",service="wharf"`) {
				t.Errorf("%s /v2/: WWW-Authenticate %q", s.name, base.header.Get("WWW-Authenticate"))
			}
			continue
		}
		check(t, s.name+" /v2/", base, "GET", 200, "")
		check(t, s.name+" catalog", cat, "GET", 200, "")
		var got struct{ Repositories []string }
		_ = json.Unmarshal(cat.body, &got)
		var want []string
		for _, repo := range w.repos {
			if slices.Contains(s.rights(repo, w.public[repo]), "pull") {
				want = append(want, repo)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got.Repositories, want) {
			t.Errorf("%s catalog = %v, want %v", s.name, got.Repositories, want)
		}
	}
}

func check(t *testing.T, what string, got reply, method string, status int, code string) {
	t.Helper()
	if got.status != status {
		t.Errorf("%s = %d %s, want %d %s", what, got.status, got.body, status, code)
		return
	}
	if code != "" && method != "HEAD" && got.code() != code {
		t.Errorf("%s: error code %q (%s), want %s", what, got.code(), got.body, code)
	}
}

func containsAll(have, need []string) bool {
	for _, n := range need {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
