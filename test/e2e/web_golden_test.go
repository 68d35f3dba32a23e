//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestWebBrowserGolden walks the golden-image pages in a browser: a
// golden base's "used by" list with an outdated app, the app's base image
// panel, and explore filtered to images with outdated bases.
func TestWebBrowserGolden(t *testing.T) {
	srv := startWharf(t)
	policy := cmd(wharfBin, append([]string{"policy", "set", "golden/*", "golden=true"}, srv.storeArgs...)...)
	policy.env = srv.env
	policy.mustRun(t)
	write := func(ref string, img v1.Image) {
		t.Helper()
		r, err := name.ParseReference(srv.Addr + "/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	base10, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	write("golden/base:1.0", base10)
	write("golden/base:1", base10)
	layer, err := random.Layer(512, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	app, err := mutate.AppendLayers(base10, layer)
	if err != nil {
		t.Fatal(err)
	}
	write("team/app:v1", app)
	base11, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	write("golden/base:1.1", base11)
	write("golden/base:1", base11)

	ctx := newBrowser(t)
	do(t, ctx, "open the golden base", chromedp.Navigate(srv.URL+"/r/golden/base"), chromedp.WaitVisible(chromedp.ID("usedby")))
	if row := textOf(t, ctx, "#usedby tbody tr"); !strings.Contains(row, "team/app:v1") || !strings.Contains(row, "golden/base:1.0") ||
		!strings.Contains(row, "outdated") || !strings.Contains(row, "1 now points to 1.1") {
		t.Errorf("used-by row = %q; want team/app:v1 on golden/base:1.0, outdated by 1.1", row)
	}
	screenshot(t, ctx, "golden-used-by")

	do(t, ctx, "open the app", chromedp.Click(chromedp.CSS(`#usedby a[href="/r/team/app/tags/v1"]`)), chromedp.WaitVisible(chromedp.ID("base")))
	if panel := textOf(t, ctx, "#base"); !strings.Contains(panel, "golden/base:1.0") || !strings.Contains(panel, "outdated") || !strings.Contains(panel, "its layers") {
		t.Errorf("base image panel = %q", panel)
	}
	screenshot(t, ctx, "golden-base-panel")

	do(t, ctx, "filter explore", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("repo-outdated")),
		chromedp.Click(chromedp.ID("repo-outdated")), chromedp.Submit(chromedp.ID("repo-q")), chromedp.WaitVisible(chromedp.ID("outdated")))
	if list := textOf(t, ctx, "#outdated"); !strings.Contains(list, "team/app:v1") {
		t.Errorf("outdated images = %q; want team/app:v1", list)
	}
}
