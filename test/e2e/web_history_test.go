//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestWebBrowserTagHistory walks the tag history in a browser: the
// floating tags across releases of a semver repository, a tag's timeline
// reached from the tags page, and a restore from it.
func TestWebBrowserTagHistory(t *testing.T) {
	srv := startWharf(t)
	policy := cmd(wharfBin, append([]string{"policy", "set", "team/*", "floating-tags=semver"}, srv.storeArgs...)...)
	policy.env = srv.env
	policy.mustRun(t)
	digests := map[string]string{}
	for _, v := range []string{"2.0.0", "2.1.0", "1.9.0", "2.1.1"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(srv.Addr + "/team/app:" + v)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatalf("push %s: %v", v, err)
		}
		d, _ := img.Digest()
		digests[v] = d.String()
	}

	ctx := newBrowser(t)
	do(t, ctx, "open the history tab", chromedp.Navigate(srv.URL+"/r/team/app"),
		chromedp.Click(chromedp.CSS(`.tabs a[href="/r/team/app/history"]`)), chromedp.WaitVisible(chromedp.ID("evolution")))
	if head := textOf(t, ctx, "#evolution thead"); strings.Join(strings.Fields(head), " ") != "Release latest 2 2.1 2.0 1 1.9" {
		t.Errorf("evolution columns = %q", head)
	}
	for release, want := range map[string]string{
		"2.1.1": "2.1.1 2.1.1 2.1.1 2.0.0 1.9.0 1.9.0",
		"1.9.0": "2.1.0 2.1.0 2.1.0 2.0.0 1.9.0 1.9.0",
		"2.0.0": "2.0.0 2.0.0 — 2.0.0 — —",
	} {
		cells := textOf(t, ctx, `#evolution tr[data-release="`+release+`"]`)
		if f := strings.Fields(cells); len(f) < 6 || strings.Join(f[len(f)-6:], " ") != want {
			t.Errorf("after %s the floating tags pointed at %q, want %s", release, cells, want)
		}
	}
	screenshot(t, ctx, "history-floating")

	do(t, ctx, "open latest's timeline from the tags page",
		chromedp.Click(chromedp.CSS(`.tabs a[href="/r/team/app/tags"]`)), chromedp.WaitVisible(chromedp.ID("tag-table")),
		chromedp.Click(chromedp.CSS(`a[aria-label="History of latest"]`)), chromedp.WaitVisible(chromedp.ID("timeline")))
	if tl := textOf(t, ctx, "#timeline"); strings.Count(tl, "floating") != 3 || !strings.Contains(tl, "created") {
		t.Errorf("latest's timeline = %q; want its three floating moves", tl)
	}
	do(t, ctx, "restore latest to 2.1.0",
		chromedp.Click(chromedp.CSS(`button[aria-label="Restore latest to `+digests["2.1.0"]+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if first := textOf(t, ctx, "#timeline li:first-child"); !strings.Contains(first, "rollback") {
		t.Errorf("newest change after the restore = %q, want the rollback", first)
	}
	screenshot(t, ctx, "history-timeline")
	if got := manifestDigest(t, srv, "team/app", "latest"); got != digests["2.1.0"] {
		t.Errorf("latest → %s after the restore, want 2.1.0's %s", got, digests["2.1.0"])
	}
}
