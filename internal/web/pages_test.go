package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

func TestExplore_FirstRunShowsHowToPush(t *testing.T) {
	srv := registrytest.NewServer(t)
	b := newBrowser(t, srv)
	resp := b.get("/")
	if resp.code != http.StatusOK {
		t.Fatalf("GET / = %d", resp.code)
	}
	host := hostOf(srv)
	wantContains(t, "first-run page", resp.body,
		"docker image tag hello-world "+host+"/library/hello-world:latest",
		"docker image push "+host+"/library/hello-world:latest",
		"Open registry")
	wantLacks(t, "open registry's first-run page", resp.body, "wharf login", "Sign in</a>")
	for h, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
	} {
		if got := resp.header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want %q in it", h, got, want)
		}
	}
}

func TestExplore_FirstRunWithAuthShowsLogin(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	b := newBrowser(t, srv)
	b.signIn("admin", adminPassword)
	body := b.get("/").body
	wantContains(t, "first-run page", body, "wharf login "+hostOf(srv), "docker image push "+hostOf(srv)+"/admin/hello-world:latest")
}

func TestPages_RepositoryTagsAndLayers(t *testing.T) {
	srv := registrytest.NewServer(t)
	push(t, srv, "alice/app:v1", testImage(t, "amd64"))
	pushIndex(t, srv, "alice/app:multi")
	push(t, srv, "bob/other:latest", testImage(t, "amd64"))
	b := newBrowser(t, srv)
	host := hostOf(srv)

	explore := b.get("/?sort=name")
	wantContains(t, "explore", text(explore.body), "alice/app", "bob/other", "2 tags", "less than a minute ago")
	push(t, srv, "carol/tags:v1", testImage(t, "amd64"))
	// A repository whose name ends like a page is linked so that it opens.
	wantContains(t, "explore", b.get("/?q=carol").body, `href="/r/carol/tags/_"`)
	wantContains(t, "shadowed overview", text(b.get("/r/carol/tags/_").body), "docker pull "+host+"/carol/tags")
	wantContains(t, "shadowed tags", text(b.get("/r/carol/tags/_?tab=tags").body), "docker pull "+host+"/carol/tags:v1")
	search := b.get("/search?q=other")
	wantContains(t, "search", search.body, "bob/other")
	wantLacks(t, "search", search.body, "alice/app")

	overview := b.get("/r/alice/app")
	if overview.code != http.StatusOK {
		t.Fatalf("overview = %d", overview.code)
	}
	wantContains(t, "overview", overview.body, "docker pull "+host+"/alice/app", `data-copy="docker pull `+host+`/alice/app"`)

	tags := b.get("/r/alice/app/tags")
	tt := text(tags.body)
	wantContains(t, "tags page", tt, "v1", "multi", "linux/amd64, linux/arm64/v8", "less than a minute ago",
		"docker pull "+host+"/alice/app:v1")
	wantContains(t, "tags page", tags.body, `<time datetime="`, `title="`, "Delete tag v1")
	v1Row := tags.body[strings.Index(tags.body, `<tr data-name="v1">`):]
	wantContains(t, "v1 row", text(v1Row[:strings.Index(v1Row, "</tr>")]), "linux/amd64")
	wantLacks(t, "tags page", tags.body, "image.v1&#43;json")

	filtered := text(b.get("/r/alice/app/tags?name=mul").body)
	wantContains(t, "filtered tags", filtered, "multi")
	wantLacks(t, "filtered tags", filtered, "alice/app:v1")

	detail := b.get("/r/alice/app/tags/v1")
	dt := text(detail.body)
	wantContains(t, "tag page", detail.body, "ENV APP_MODE=&lt;prod&gt;")
	wantContains(t, "tag page", dt, "RUN /bin/sh -c make install # buildkit", "ENV APP_MODE=<prod>", "/bin/tini --", "/app --serve", "8080/tcp", "org.opencontainers.image.source",
		"linux/amd64", "Raw manifest", "No signatures, SBOMs or attestations")

	multi := b.get("/r/alice/app/tags/multi")
	wantContains(t, "index page", text(multi.body), "Platforms", "linux/amd64", "linux/arm64/v8")
	if !strings.Contains(multi.body, "/r/alice/app/manifests/sha256:") {
		t.Fatal("index page links no platform manifest")
	}
	i := strings.Index(multi.body, "/r/alice/app/manifests/sha256:")
	link := multi.body[i : i+len("/r/alice/app/manifests/sha256:")+64]
	platform := b.get(link)
	wantContains(t, "platform page", text(platform.body), "Image layers", "make install")

	if resp := b.get("/no/such/page"); resp.code != http.StatusNotFound || !strings.Contains(resp.body, "There is no page here.") {
		t.Errorf("unknown page = %d, want the 404 page", resp.code)
	}
	for _, path := range []string{"/r/alice/nope", "/r/alice/app/tags/nope", "/r/alice/app/manifests/sha256:" + strings.Repeat("0", 64)} {
		if got := b.get(path).code; got != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, got)
		}
	}
}

func TestPages_HostileDescriptionIsEscaped(t *testing.T) {
	srv := registrytest.NewServer(t)
	push(t, srv, "alice/app:v1", testImage(t, "amd64"))
	b := newBrowser(t, srv)
	readme := "# Hello\n\n<script>alert('readme')</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(2)>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
	resp := b.post("/r/alice/app/settings", url.Values{"op": {"description"}, "description": {`<script>alert("desc")</script>`}, "readme": {readme}})
	if resp.code != http.StatusSeeOther {
		t.Fatalf("save description = %d %s", resp.code, resp.body)
	}
	for _, path := range []string{"/", "/r/alice/app", "/u/alice"} {
		body := b.get(path).body
		wantLacks(t, path, body, "<script>alert", "javascript:alert", "onerror=")
		wantContains(t, path, body, "&lt;script&gt;alert(&#34;desc&#34;)&lt;/script&gt;")
	}
	overview := b.get("/r/alice/app").body
	wantContains(t, "rendered readme", overview, "<h1", "Hello</h1>", "<table>", "<td>1</td>")
}

func TestForms_RequireCSRF(t *testing.T) {
	srv := registrytest.NewServer(t)
	push(t, srv, "alice/app:v1", testImage(t, "amd64"))
	push(t, srv, "alice/app:v2", testImage(t, "amd64"))
	b := newBrowser(t, srv)

	forged := b.do(http.MethodPost, "/r/alice/app/tags/v1", url.Values{"op": {"delete"}, "csrf": {"guess"}}, nil)
	if forged.code != http.StatusForbidden {
		t.Errorf("delete without the CSRF cookie's value = %d, want 403", forged.code)
	}
	if got := b.get("/r/alice/app/tags/v1").code; got != http.StatusOK {
		t.Fatalf("tag v1 after a forged delete = %d, want it still there", got)
	}
	resp := b.post("/r/alice/app/tags/v1", url.Values{"op": {"delete"}})
	if resp.code != http.StatusSeeOther || !strings.Contains(resp.header.Get("Location"), "flash=tag-deleted") {
		t.Fatalf("delete tag = %d %q", resp.code, resp.header.Get("Location"))
	}
	if got := b.get("/r/alice/app/tags/v1").code; got != http.StatusNotFound {
		t.Errorf("tag v1 after delete = %d, want 404", got)
	}
	page := b.get("/r/alice/app/tags?flash=tag-deleted")
	wantContains(t, "tags after delete", text(page.body), "The tag was deleted.", "v2")
	if got := text(b.get("/?flash=<b>spoof</b>").body); strings.Contains(got, "spoof") {
		t.Error("a flash text from the URL was shown")
	}

	resp = b.post("/r/alice/app/settings", url.Values{"op": {"delete"}, "confirm": {"alice/wrong"}})
	if resp.code != http.StatusBadRequest {
		t.Errorf("delete repository with a wrong confirmation = %d, want 400", resp.code)
	}
	resp = b.post("/r/alice/app/settings", url.Values{"op": {"delete"}, "confirm": {"alice/app"}})
	if resp.code != http.StatusSeeOther {
		t.Fatalf("delete repository = %d", resp.code)
	}
	if got := b.get("/r/alice/app").code; got != http.StatusNotFound {
		t.Errorf("repository after delete = %d, want 404", got)
	}
}

func TestExplore_Paginates(t *testing.T) {
	srv := registrytest.NewServer(t)
	img := testImage(t, "amd64")
	for i := range 27 {
		push(t, srv, fmt.Sprintf("team/app%02d:v1", i), img)
	}
	b := newBrowser(t, srv)
	first := b.get("/?sort=name")
	wantContains(t, "page 1", text(first.body), "Page 1 of 2 · 27 in all", "team/app00", "team/app24")
	wantLacks(t, "page 1", text(first.body), "team/app25")
	wantContains(t, "page 1", first.body, `href="/?page=2&amp;sort=name" rel="next"`)
	second := text(b.get("/?page=2&sort=name").body)
	wantContains(t, "page 2", second, "Page 2 of 2", "team/app25", "team/app26")
	wantLacks(t, "page 2", second, "team/app24")
	newest := text(b.get("/u/team").body)
	if i, j := strings.Index(newest, "team/app26"), strings.Index(newest, "team/app02"); i < 0 || j < 0 || i > j {
		t.Errorf("the namespace page is not newest first: %q", newest)
	}
}
