//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// browserTimeout bounds one browser session; a page renders in
// milliseconds, Chromium starts in a second or two.
const browserTimeout = 2 * time.Minute

// newBrowser starts Debian's headless Chromium with a fresh profile. A
// missing Chromium fails the test: setup.sh installs it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := requireTool(t, "chromium")
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	// Destructive forms ask window.confirm; a person would click OK.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// screenshot saves the page as NAME.png in $WHARF_SCREENSHOT_DIR (the
// README's docs/screenshots are taken with it set), else in a temp dir.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WHARF_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "wharf-e2e-screenshots")
	}
	// Quality 100 asks for PNG; anything less gives JPEG.
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func textOf(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

// builtImage is an image with a build's history, so that the layers view
// has commands to show.
func builtImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"httpd", "-f", "-h", "/var/www"}
	cf.Config.Env = []string{"PATH=/bin"}
	cf.Config.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	cf.History = []v1.History{
		{CreatedBy: "ADD rootfs.tar / # buildkit"},
		{CreatedBy: "COPY index.html /var/www/ # buildkit"},
		{CreatedBy: `CMD ["httpd" "-f" "-h" "/var/www"]`, EmptyLayer: true},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestWebBrowser walks the UI as a person who pushed with a client: sign
// in, find the repository, see the tag pushed seconds ago, open its
// layers, make an access token, push with it through crane, revoke it
// and see crane refused, and delete a tag.
func TestWebBrowser(t *testing.T) {
	crane := requireTool(t, "crane")
	srv := startWharfAuth(t, freeLoopbackAddr(t))
	addUser(t, srv, "alice", alicePassword)
	ref, err := name.ParseReference(srv.Addr + "/alice/image-gallery:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, builtImage(t), remote.WithAuth(&authn.Basic{Username: "alice", Password: alicePassword})); err != nil {
		t.Fatalf("push alice/image-gallery:v1: %v", err)
	}

	ctx := newBrowser(t)
	do(t, ctx, "sign in",
		chromedp.Navigate(srv.URL+"/signin"),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), alicePassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`a.title[href="/r/alice/image-gallery"]`)),
	)

	do(t, ctx, "describe the repository",
		chromedp.Click(chromedp.CSS(`a.title[href="/r/alice/image-gallery"]`)),
		chromedp.Click(chromedp.CSS(`.tabs a[href="/r/alice/image-gallery/settings"]`)),
		chromedp.SendKeys(chromedp.ID("description"), "The image gallery from the sharing-images tutorial"),
		chromedp.SendKeys(chromedp.ID("readme"), "# Image gallery\n\nA tiny web server with busybox `httpd`.\n\n"+
			"| tag | what |\n|---|---|\n| `v1` | first release |\n\n<script>alert('no')</script>\n"),
		chromedp.Submit(chromedp.ID("description")),
		chromedp.WaitVisible(chromedp.CSS(".md h1")),
	)
	if readme := textOf(t, ctx, ".md"); !strings.Contains(readme, "A tiny web server") || strings.Contains(readme, "alert") {
		t.Errorf("rendered readme = %q", readme)
	}
	if cmd := textOf(t, ctx, ".side .copy code"); cmd != "docker pull "+srv.Addr+"/alice/image-gallery" {
		t.Errorf("pull command = %q", cmd)
	}
	screenshot(t, ctx, "repository")

	do(t, ctx, "explore", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("p.desc")))
	screenshot(t, ctx, "explore")
	do(t, ctx, "open the repository", chromedp.Click(chromedp.CSS(`a.title[href="/r/alice/image-gallery"]`)),
		chromedp.WaitVisible(chromedp.CSS(".side .copy")))

	do(t, ctx, "open the tags", chromedp.Click(chromedp.CSS(`.tabs a[href="/r/alice/image-gallery/tags"]`)),
		chromedp.WaitVisible(chromedp.ID("tag-table")))
	row := textOf(t, ctx, `tr[data-name="v1"]`)
	for _, want := range []string{"v1", "linux/amd64", "less than a minute ago by alice"} {
		if !strings.Contains(row, want) {
			t.Errorf("tag row %q lacks %q", row, want)
		}
	}
	screenshot(t, ctx, "tags")

	do(t, ctx, "open the layers", chromedp.Click(chromedp.CSS(`tr[data-name="v1"] th a`)),
		chromedp.WaitVisible(chromedp.ID("layers-h")))
	layers := textOf(t, ctx, "table.layers")
	for _, want := range []string{"ADD rootfs.tar / # buildkit", "COPY index.html /var/www/ # buildkit", `CMD ["httpd" "-f" "-h" "/var/www"]`} {
		if !strings.Contains(layers, want) {
			t.Errorf("layers %q lack %q", layers, want)
		}
	}
	screenshot(t, ctx, "layers")

	do(t, ctx, "create an access token",
		chromedp.Navigate(srv.URL+"/settings"),
		chromedp.SendKeys(chromedp.ID("tok-name"), "e2e crane"),
		chromedp.Submit(chromedp.ID("tok-name")),
		chromedp.WaitVisible(chromedp.CSS(".newtoken")),
	)
	secret := ""
	for _, c := range strings.Fields(textOf(t, ctx, ".newtoken")) {
		if strings.HasPrefix(c, "wharf_pat_") {
			secret = c
		}
	}
	if secret == "" {
		t.Fatal("the new token is not shown")
	}

	cfg := t.TempDir()
	craneCmd := func(args ...string) command {
		c := cmd(crane, append(args, "--insecure")...)
		c.env = []string{"DOCKER_CONFIG=" + cfg}
		return c
	}
	layer := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(layer, oneFileTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	craneCmd("auth", "login", srv.Addr, "-u", "alice", "-p", secret).mustRun(t)
	craneCmd("append", "-f", layer, "-t", srv.Addr+"/alice/image-gallery:v2").mustRun(t)

	// A pull by tag counts. Counts reach the database in a batch a few
	// seconds later (never a write per pull), so the check polls.
	craneCmd("manifest", srv.Addr+"/alice/image-gallery:v1").mustRun(t)
	waitPullCount(t, srv, "alice/image-gallery", 1)

	do(t, ctx, "see the token used",
		chromedp.Navigate(srv.URL+"/settings"),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Revoke token e2e crane"]`)),
	)
	if tokens := textOf(t, ctx, "table.grid"); !strings.Contains(tokens, "less than a minute ago") {
		t.Errorf("token list %q does not say it was just used", tokens)
	}
	do(t, ctx, "revoke the token",
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke token e2e crane"]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if out, err := craneCmd("append", "-f", layer, "-t", srv.Addr+"/alice/image-gallery:v3").run(t); err == nil {
		t.Errorf("a push with the revoked token succeeded: %s", out)
	}

	// The dark theme follows the system's preference.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatalf("emulate a dark theme: %v", err)
	}
	do(t, ctx, "open the tags in the dark theme",
		chromedp.Navigate(srv.URL+"/r/alice/image-gallery/tags"),
		chromedp.WaitVisible(chromedp.ID("tag-table")),
	)
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || bg != "rgb(15, 20, 25)" {
		t.Errorf("dark theme background = %q (%v), want rgb(15, 20, 25)", bg, err)
	}
	screenshot(t, ctx, "tags-dark")

	// On a phone the page fits the screen: nothing scrolls sideways but
	// the tags table's own box.
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true,
	}); err != nil {
		t.Fatalf("emulate a phone: %v", err)
	}
	do(t, ctx, "open the tags on a phone", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("tag-table")))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err != nil || overflow {
		t.Errorf("the page scrolls sideways on a phone (%v)", err)
	}
	screenshot(t, ctx, "tags-phone")
	if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}

	do(t, ctx, "delete tag v2",
		chromedp.Navigate(srv.URL+"/r/alice/image-gallery/tags"),
		chromedp.Click(chromedp.CSS(`button[aria-label="Delete tag v2"]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if rows := textOf(t, ctx, "#tag-table tbody"); strings.Contains(rows, "v2") || !strings.Contains(rows, "v1") {
		t.Errorf("tags after deleting v2: %q", rows)
	}
}

// waitPullCount polls the Hub API until repo's pull_count reaches want;
// the registry flushes counts about five seconds after a pull.
func waitPullCount(t *testing.T, srv *wharfServer, repo string, want int) {
	t.Helper()
	ns, name, _ := strings.Cut(repo, "/")
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v2/namespaces/"+ns+"/repositories/"+name, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("alice", alicePassword)
		var got struct {
			PullCount int `json:"pull_count"`
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
		}
		if err == nil && got.PullCount >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pull_count of %s = %d (%v), want %d", repo, got.PullCount, err, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
