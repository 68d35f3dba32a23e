package web_test

import (
	"context"
	"encoding/json"
	stdhtml "html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf/wharf/internal/registrytest"
)

const (
	adminPassword = "admin-password"
	userPassword  = "user-password"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testImage is a two-layer image with the history and config a docker
// build leaves: ENV and CMD steps that made no layer, two RUN steps.
func testImage(t testing.TB, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Env = []string{"PATH=/usr/bin", "APP_MODE=<prod>"}
	cf.Config.Cmd = []string{"/app", "--serve"}
	cf.Config.Entrypoint = []string{"/bin/tini", "--"}
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.source": "https://example.com/app"}
	cf.History = []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) ADD file:rootfs in / "},
		{CreatedBy: "ENV APP_MODE=<prod>", EmptyLayer: true},
		{CreatedBy: "RUN /bin/sh -c make install # buildkit"},
		{CreatedBy: `CMD ["/app" "--serve"]`, EmptyLayer: true},
	}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	return img
}

// remoteOpts are go-containerregistry options for user (anonymous if "").
func remoteOpts(user, secret string) []remote.Option {
	if user == "" {
		return nil
	}
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: user, Password: secret})}
}

// push writes img to host/repo:tag.
func push(t testing.TB, srv *registrytest.Server, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(hostOf(srv) + "/" + ref)
	must(t, err)
	must(t, remote.Write(r, img, opts...))
}

// pushIndex writes a two-platform index to host/repo:tag.
func pushIndex(t testing.TB, srv *registrytest.Server, ref string, opts ...remote.Option) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: testImage(t, p.Architecture), Descriptor: v1.Descriptor{Platform: &p}})
	}
	r, err := name.ParseReference(hostOf(srv) + "/" + ref)
	must(t, err)
	must(t, remote.WriteIndex(r, idx, opts...))
	return idx
}

func hostOf(srv *registrytest.Server) string {
	u, _ := url.Parse(srv.URL)
	return u.Host
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that tests see them.
type browser struct {
	t   testing.TB
	srv *registrytest.Server
	c   *http.Client
}

func newBrowser(t testing.TB, srv *registrytest.Server) *browser {
	jar, err := cookiejar.New(nil)
	must(t, err)
	return &browser{t: t, srv: srv, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type response struct {
	code   int
	body   string
	header http.Header
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.srv.URL+path, body)
	must(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	must(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(b.t, err)
	return response{resp.StatusCode, string(data), resp.Header}
}

func (b *browser) get(path string) response { return b.do(http.MethodGet, path, nil, nil) }

var csrfMetaRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// csrf returns the CSRF token a page would give this browser's forms:
// a signed-in page's (derived from the session), else the CSRF cookie
// that the sign-in form double-submits.
func (b *browser) csrf() string {
	b.t.Helper()
	page := b.get("/")
	if m := csrfMetaRE.FindStringSubmatch(page.body); m != nil {
		return m[1]
	}
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "wharf_csrf" || c.Name == "__Host-wharf_csrf" {
			return c.Value
		}
	}
	b.t.Fatal("no CSRF token after a page view")
	return ""
}

// post submits a form with the CSRF field.
func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	form.Set("csrf", b.csrf())
	return b.do(http.MethodPost, path, form, nil)
}

func (b *browser) signIn(user, password string) {
	b.t.Helper()
	resp := b.post("/signin", url.Values{"username": {user}, "password": {password}, "next": {"/"}})
	if resp.code != http.StatusSeeOther {
		b.t.Fatalf("sign in as %s: %d %s", user, resp.code, resp.body)
	}
}

// getJSON fetches path with optional headers and decodes the answer.
func (b *browser) getJSON(path string, header map[string]string, into any) int {
	b.t.Helper()
	resp := b.do(http.MethodGet, path, nil, header)
	if resp.code == http.StatusOK {
		if ct := resp.header.Get("Content-Type"); ct != "application/json" {
			b.t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		must(b.t, json.Unmarshal([]byte(resp.body), into))
	}
	return resp.code
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// text is a page's text without tags and with spaces collapsed, for
// assertions on what a reader sees.
func text(html string) string {
	return strings.Join(strings.Fields(stdhtml.UnescapeString(tagRE.ReplaceAllString(html, " "))), " ")
}

func wantContains(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q", what, sub)
		}
	}
}

func wantLacks(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Errorf("%s contains %q", what, sub)
		}
	}
}
