package server_test

import (
	"context"
	"encoding/base64"
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
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// tokenFor asks GET /token for scope with Basic credentials.
func (w *authWorld) tokenFor(t *testing.T, user, secret, scope string) string {
	t.Helper()
	q := url.Values{"service": {"wharf"}, "scope": {scope}}
	resp := w.do(t, "GET", "/token?"+q.Encode(), basic(user, secret), nil)
	if resp.status != http.StatusOK {
		t.Fatalf("token for %s %s: %d %s", user, scope, resp.status, resp.body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(resp.body, &tok)
	return tok.AccessToken
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func segment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestAuth_TokensAreRefusedWhenForged: a token is good only for what it
// was signed for, by this server, unaltered.
func TestAuth_TokensAreRefusedWhenForged(t *testing.T) {
	w := newAuthWorld(t)
	pubPull := w.tokenFor(t, "alice", userPassword, "repository:alice/pub:pull")
	parts := strings.Split(pubPull, ".")

	// Claims widened to another repository, signature kept.
	claims := claimsOf(t, pubPull)
	claims["access"] = []map[string]any{{"type": "repository", "name": "alice/priv", "actions": []string{"pull", "push"}}}
	tampered := parts[0] + "." + segment(claims) + "." + parts[2]
	// alg none, no signature.
	none := segment(map[string]string{"alg": "none", "typ": "JWT"}) + "." + segment(claims) + "."
	// A token from another wharf: valid, but signed with a key this one never had.
	other := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	ctx := context.Background()
	must(t, other.Auth.AddUser(ctx, "alice", userPassword, false))
	foreign := (&authWorld{srv: other}).tokenFor(t, "alice", userPassword, "repository:alice/priv:pull")

	for name, tok := range map[string]string{"tampered claims": tampered, "alg none": none, "another server's key": foreign, "garbage": "not-a-token"} {
		got := w.do(t, "GET", "/v2/alice/priv/manifests/v1", bearerAuth(tok), nil)
		check(t, name, got, "GET", 401, "UNAUTHORIZED")
		if !strings.Contains(got.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate %q lacks invalid_token", name, got.header.Get("WWW-Authenticate"))
		}
	}

	// A genuine token for repository A does not open repository B.
	got := w.do(t, "GET", "/v2/alice/priv/manifests/v1", bearerAuth(pubPull), nil)
	check(t, "token for alice/pub on alice/priv", got, "GET", 401, "DENIED")
	// Pull on A is not push on A.
	got = w.do(t, "PUT", "/v2/alice/pub/manifests/v1", bearerAuth(pubPull), w.body["alice/pub"])
	check(t, "pull token used to push", got, "PUT", 401, "DENIED")
}

// TestAuth_TokenGrantsAreIntersected: asking for more than an account
// may do is not an error; the token simply carries less.
func TestAuth_TokenGrantsAreIntersected(t *testing.T) {
	w := newAuthWorld(t)
	tok := w.tokenFor(t, "carol", userPassword,
		"repository:acme/priv:pull,push,delete repository:alice/priv:pull registry:catalog:*")
	access := fmt.Sprint(claimsOf(t, tok)["access"])
	want := "[map[actions:[pull] name:acme/priv type:repository] map[actions:[*] name:catalog type:registry]]"
	if access != want {
		t.Errorf("carol's access = %s, want %s", access, want)
	}
	c := claimsOf(t, tok)
	if c["sub"] != "carol" || c["iss"] != "wharf" || c["aud"] == nil || c["jti"] == nil || c["exp"] == nil || c["nbf"] == nil || c["iat"] == nil {
		t.Errorf("claims missing registered fields: %v", c)
	}

	// A name holding host:port splits at the first and last colon.
	q := url.Values{"service": {"wharf"}, "scope": {"repository:localhost:5000/alice/pub:pull"}}
	resp := w.do(t, "GET", "/token?"+q.Encode(), basic("alice", userPassword), nil)
	if resp.status != http.StatusOK {
		t.Errorf("host:port scope: %d %s", resp.status, resp.body)
	}
	// Another service's token is refused clearly.
	resp = w.do(t, "GET", "/token?service=elsewhere&scope=repository:alice/pub:pull", basic("alice", userPassword), nil)
	if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), "elsewhere") {
		t.Errorf("wrong service: %d %s, want 400 naming it", resp.status, resp.body)
	}
	resp = w.do(t, "GET", "/token?service=wharf", basic("alice", "wrong-password"), nil)
	check(t, "wrong password", resp, "GET", 401, "UNAUTHORIZED")
}

// loginRefreshTokens runs the server with auth.login_refresh_tokens.
func loginRefreshTokens(c *config.Config) { c.Auth.LoginRefreshTokens = true }

// tokenPost sends form to POST /token.
func (w *authWorld) tokenPost(t *testing.T, form url.Values) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", w.srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var buf strings.Builder
	_, _ = io.Copy(&buf, r.Body)
	return reply{r.StatusCode, r.Header, []byte(buf.String())}
}

// TestAuth_DockerLoginGetsNoRefreshTokenByDefault: by default a password
// login that asks for an offline token gets an access token and no refresh
// token, as on Docker Hub, so docker saves the password, which podman and
// skopeo can use from the same config.json; an identity token there makes
// them refuse to log in.
func TestAuth_DockerLoginGetsNoRefreshTokenByDefault(t *testing.T) {
	w := newAuthWorld(t)
	resp := w.do(t, "GET", "/token?service=wharf&offline_token=true&client_id=docker", basic("alice", userPassword), nil)
	var login map[string]any
	_ = json.Unmarshal(resp.body, &login)
	if _, has := login["refresh_token"]; resp.status != 200 || has || login["token"] == nil || login["access_token"] == nil {
		t.Errorf("GET /token with offline_token=true: %d %s, want a token and no refresh_token", resp.status, resp.body)
	}
	resp = w.tokenPost(t, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword},
		"service": {"wharf"}, "client_id": {"docker"}, "access_type": {"offline"}, "scope": {"repository:alice/priv:pull"}})
	login = nil
	_ = json.Unmarshal(resp.body, &login)
	if _, has := login["refresh_token"]; resp.status != 200 || has || login["access_token"] == nil {
		t.Errorf("POST /token with access_type=offline: %d %s, want an access token and no refresh_token", resp.status, resp.body)
	}
}

// TestAuth_DockerLoginRefreshFlow: with auth.login_refresh_tokens, docker
// login asks for an offline token and later trades it with POST /token; a
// password change ends it.
func TestAuth_DockerLoginRefreshFlow(t *testing.T) {
	w := newAuthWorld(t, registrytest.WithConfig(loginRefreshTokens))
	resp := w.do(t, "GET", "/token?service=wharf&offline_token=true&client_id=docker", basic("alice", userPassword), nil)
	var login struct {
		Token        string `json:"token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
		IssuedAt     string `json:"issued_at"`
	}
	_ = json.Unmarshal(resp.body, &login)
	if resp.status != 200 || login.RefreshToken == "" || login.Token == "" || login.ExpiresIn != 300 || login.IssuedAt == "" {
		t.Fatalf("docker login: %d %s", resp.status, resp.body)
	}

	post := func(form url.Values) reply { return w.tokenPost(t, form) }
	resp = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.RefreshToken}, "service": {"wharf"},
		"client_id": {"docker"}, "scope": {"repository:alice/priv:pull,push"}})
	var oauth struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	_ = json.Unmarshal(resp.body, &oauth)
	if resp.status != 200 || oauth.Scope != "repository:alice/priv:pull,push" {
		t.Fatalf("refresh grant: %d %s", resp.status, resp.body)
	}
	got := w.do(t, "GET", "/v2/alice/priv/manifests/v1", bearerAuth(oauth.AccessToken), nil)
	check(t, "refreshed token", got, "GET", 200, "")

	resp = post(url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {userPassword},
		"service": {"wharf"}, "client_id": {"test"}, "access_type": {"offline"}, "scope": {"repository:acme/priv:push"}})
	if resp.status != 200 || !strings.Contains(string(resp.body), `"refresh_token":"wharf_rt_`) {
		t.Errorf("password grant: %d %s", resp.status, resp.body)
	}
	resp = post(url.Values{"grant_type": {"client_credentials"}})
	if resp.status != http.StatusBadRequest {
		t.Errorf("unknown grant_type: %d %s", resp.status, resp.body)
	}

	must(t, w.srv.Auth.SetPassword(context.Background(), "alice", "a-new-password"))
	resp = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.RefreshToken}, "service": {"wharf"}, "client_id": {"docker"}})
	check(t, "refresh after a password change", resp, "POST", 401, "UNAUTHORIZED")
	// The access token the refresh token bought dies with it, not minutes later.
	got = w.do(t, "GET", "/v2/alice/priv/manifests/v1", bearerAuth(oauth.AccessToken), nil)
	wantInvalidToken(t, "token from a revoked refresh token", got)
}

// wantInvalidToken checks a 401 whose challenge says invalid_token, which
// makes docker fetch a new token instead of reporting missing rights.
func wantInvalidToken(t *testing.T, what string, got reply) {
	t.Helper()
	check(t, what, got, "GET", 401, "UNAUTHORIZED")
	if c := got.header.Get("WWW-Authenticate"); !strings.Contains(c, `error="invalid_token"`) {
		t.Errorf("%s: challenge %q, want error=\"invalid_token\"", what, c)
	}
}

// TestAuth_BearerTokensEndWithTheirCredentials: a bearer token stops
// working as soon as the access token it was bought with is revoked or
// its user deleted, though its own lifetime has minutes left.
func TestAuth_BearerTokensEndWithTheirCredentials(t *testing.T) {
	w := newAuthWorld(t)
	ctx := context.Background()
	const path = "/v2/alice/priv/manifests/v1"
	pat, tok, err := w.srv.Auth.CreatePAT(ctx, "alice", "laptop", auth.ScopeRead, time.Time{})
	must(t, err)
	fromPAT := w.tokenFor(t, "alice", pat, "repository:alice/priv:pull")
	fromPassword := w.tokenFor(t, "alice", userPassword, "repository:alice/priv:pull")
	bobs := w.tokenFor(t, "bob", userPassword, "repository:alice/pub:pull")
	check(t, "token from a PAT", w.do(t, "GET", path, bearerAuth(fromPAT), nil), "GET", 200, "")

	must(t, w.srv.Auth.RevokePAT(ctx, "alice", tok.ID))
	wantInvalidToken(t, "token from a revoked PAT", w.do(t, "GET", path, bearerAuth(fromPAT), nil))
	check(t, "token from a password, after the PAT's revocation", w.do(t, "GET", path, bearerAuth(fromPassword), nil), "GET", 200, "")

	check(t, "bob's token", w.do(t, "GET", "/v2/alice/pub/manifests/v1", bearerAuth(bobs), nil), "GET", 200, "")
	must(t, w.srv.Auth.RemoveUser(ctx, "bob"))
	wantInvalidToken(t, "token of a deleted user", w.do(t, "GET", "/v2/alice/pub/manifests/v1", bearerAuth(bobs), nil))
}

// TestAuth_MountNeedsPullOnTheSource: a mount from a repository the
// caller may not pull becomes a plain upload session, so it learns
// nothing about the blob; from one it may pull, the blob is mounted.
func TestAuth_MountNeedsPullOnTheSource(t *testing.T) {
	w := newAuthWorld(t)
	for _, tc := range []struct {
		from string
		want int
	}{
		{"acme/priv", http.StatusAccepted}, // alice may not pull acme/priv
		{"acme/pub", http.StatusCreated},
	} {
		path := "/v2/alice/new/blobs/uploads/?mount=" + w.layer[tc.from].String() + "&from=" + tc.from
		got := w.do(t, "POST", path, basic("alice", userPassword), nil)
		if got.status != tc.want {
			t.Errorf("mount from %s = %d %s, want %d", tc.from, got.status, got.body, tc.want)
		}
	}
}

// TestAuth_MountWithATokenLackingTheSource: a token without pull on the
// mount's source, whose user may pull it, is challenged for both scopes;
// a token with both mounts; a user who may not pull the source gets a
// plain upload session.
func TestAuth_MountWithATokenLackingTheSource(t *testing.T) {
	w := newAuthWorld(t)
	path := "/v2/alice/new/blobs/uploads/?mount=" + w.layer["alice/priv"].String() + "&from=alice/priv"
	narrow := w.tokenFor(t, "alice", userPassword, "repository:alice/new:pull,push")
	got := w.do(t, "POST", path, bearerAuth(narrow), nil)
	check(t, "mount with a narrow token", got, "POST", 401, "DENIED")
	if h := got.header.Get("WWW-Authenticate"); !strings.Contains(h, `scope="repository:alice/new:pull,push repository:alice/priv:pull"`) {
		t.Errorf("challenge %q does not ask for the source", h)
	}
	wide := w.tokenFor(t, "alice", userPassword, "repository:alice/new:pull,push repository:alice/priv:pull")
	got = w.do(t, "POST", path, bearerAuth(wide), nil)
	check(t, "mount with both scopes", got, "POST", 201, "")

	bob := w.tokenFor(t, "bob", userPassword, "repository:bob/new:pull,push")
	got = w.do(t, "POST", "/v2/bob/new/blobs/uploads/?mount="+w.layer["alice/priv"].String()+"&from=alice/priv", bearerAuth(bob), nil)
	check(t, "mount from a repository bob may not pull", got, "POST", 202, "")
}

// TestAuth_DefaultPublic: with --default-visibility=public a push makes a
// public repository, while an anonymous caller cannot tell a private
// repository from a missing one: every answer it gets about the one is,
// byte for byte, the answer about the other (with the name swapped), on
// every endpoint, with no credentials, with the anonymous token docker
// fetches, and as a signed-in user with no rights there.
func TestAuth_DefaultPublic(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword),
		registrytest.WithConfig(func(c *config.Config) { c.Auth.DefaultVisibility = "public" }))
	w := &authWorld{srv: srv, manifest: map[string]digest.Digest{}, layer: map[string]digest.Digest{}, body: map[string][]byte{}}
	w.push(t, "admin/open")
	w.push(t, "admin/closed")
	must(t, srv.Auth.SetVisibility(context.Background(), "admin/closed", auth.Private))
	must(t, srv.Auth.AddUser(context.Background(), "bob", userPassword, false))

	check(t, "public by default", w.do(t, "GET", "/v2/admin/open/tags/list", basic("", ""), nil), "GET", 200, "")

	// Names of one length, so that Content-Length may be compared as is.
	const private, missing = "admin/closed", "admin/absent"
	m, layer := w.manifest[private], w.layer[private]
	requests := []struct{ method, path string }{
		{"GET", "/v2/%s/manifests/v1"},
		{"HEAD", "/v2/%s/manifests/v1"},
		{"GET", "/v2/%s/manifests/" + m.String()},
		{"HEAD", "/v2/%s/manifests/" + m.String()},
		{"GET", "/v2/%s/blobs/" + layer.String()},
		{"HEAD", "/v2/%s/blobs/" + layer.String()},
		{"GET", "/v2/%s/tags/list"},
		{"GET", "/v2/%s/referrers/" + m.String()},
		{"POST", "/v2/%s/blobs/uploads/"},
		{"POST", "/v2/%s/blobs/uploads/?mount=" + layer.String() + "&from=admin/open"},
		{"PUT", "/v2/%s/manifests/v2"},
		{"DELETE", "/v2/%s/manifests/" + m.String()},
	}
	anonymousToken := func(repo string) func(*http.Request) {
		q := url.Values{"service": {"wharf"}, "scope": {"repository:" + repo + ":pull,push,delete"}}
		resp := w.do(t, "GET", "/token?"+q.Encode(), basic("", ""), nil)
		if resp.status != http.StatusOK {
			t.Fatalf("anonymous token for %s: %d %s", repo, resp.status, resp.body)
		}
		var tok struct {
			Token string `json:"token"`
		}
		must(t, json.Unmarshal(resp.body, &tok))
		if access, _ := claimsOf(t, tok.Token)["access"].([]any); len(access) != 0 {
			t.Errorf("anonymous token for %s grants %v, want nothing", repo, access)
		}
		return bearerAuth(tok.Token)
	}
	for _, as := range []struct {
		name  string
		authz func(repo string) func(*http.Request)
	}{
		{"without credentials", func(string) func(*http.Request) { return basic("", "") }},
		{"with an anonymous token", anonymousToken},
		{"as a user without rights", func(string) func(*http.Request) { return basic("bob", userPassword) }},
	} {
		for _, r := range requests {
			what := fmt.Sprintf("%s %s %s", as.name, r.method, r.path)
			got := w.do(t, r.method, fmt.Sprintf(r.path, private), as.authz(private), nil)
			want := w.do(t, r.method, fmt.Sprintf(r.path, missing), as.authz(missing), nil)
			if got.status < 400 {
				t.Errorf("%s on the private repository = %d, want refused", what, got.status)
			}
			if d := replyDiff(got, want, private, missing); d != "" {
				t.Errorf("%s: a private repository answers unlike a missing one:\n%s", what, d)
			}
		}
	}
}

// replyDiff describes how a differs from b once a's mentions of nameA are
// read as nameB, ignoring the headers that differ on every request.
func replyDiff(a, b reply, nameA, nameB string) string {
	var diffs []string
	if a.status != b.status {
		diffs = append(diffs, fmt.Sprintf("status %d vs %d", a.status, b.status))
	}
	keys := map[string]bool{}
	for k := range a.header {
		keys[k] = true
	}
	for k := range b.header {
		keys[k] = true
	}
	for k := range keys {
		if k == "Date" || k == "X-Request-Id" {
			continue
		}
		va := strings.ReplaceAll(strings.Join(a.header.Values(k), "\n"), nameA, nameB)
		vb := strings.Join(b.header.Values(k), "\n")
		if va != vb {
			diffs = append(diffs, fmt.Sprintf("header %s: %q vs %q", k, va, vb))
		}
	}
	if ba := strings.ReplaceAll(string(a.body), nameA, nameB); ba != string(b.body) {
		diffs = append(diffs, fmt.Sprintf("body %q vs %q", ba, b.body))
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "\n")
}
