//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestWebBrowserTeams: in the browser, the administrator creates a user
// and an organisation and adds the user as a member; the user signs in
// and sees the organisation's private repository, which was hidden
// before.
func TestWebBrowserTeams(t *testing.T) {
	srv := startWharfAuth(t, freeLoopbackAddr(t))
	const dana, danaPassword = "dana", "dana-e2e-password"

	admin := newBrowser(t)
	do(t, admin, "sign in as admin",
		chromedp.Navigate(srv.URL+"/signin"),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`.who a[href="/admin"]`)),
	)
	do(t, admin, "create a user",
		chromedp.Click(chromedp.CSS(`.who a[href="/admin"]`)),
		chromedp.WaitVisible(chromedp.ID("user-add")),
		chromedp.SendKeys(chromedp.ID("new-user"), dana),
		chromedp.SendKeys(chromedp.ID("new-password"), danaPassword),
		chromedp.Submit(chromedp.ID("new-user")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="dana"]`)),
	)
	if flash := textOf(t, admin, ".flash"); flash != "The user was created." {
		t.Errorf("flash after creating a user = %q", flash)
	}
	screenshot(t, admin, "admin-users")
	do(t, admin, "create an organisation",
		chromedp.SendKeys(chromedp.ID("new-org"), "lab"),
		chromedp.Submit(chromedp.ID("new-org")),
		chromedp.WaitVisible(chromedp.ID("member-set")),
	)

	// The organisation's private repository, pushed by the administrator.
	ref, err := name.ParseReference(srv.Addr + "/lab/private:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, builtImage(t), remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword})); err != nil {
		t.Fatalf("push lab/private:v1: %v", err)
	}

	user := newBrowser(t)
	do(t, user, "sign in as dana",
		chromedp.Navigate(srv.URL+"/signin"),
		chromedp.SendKeys(chromedp.ID("username"), dana),
		chromedp.SendKeys(chromedp.ID("password"), danaPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`.who a[href="/u/dana"]`)),
	)
	if page := textOf(t, user, "main"); strings.Contains(page, "lab/private") {
		t.Fatalf("dana sees lab/private before joining lab: %q", page)
	}

	do(t, admin, "add dana to lab",
		chromedp.Navigate(srv.URL+"/u/lab"),
		chromedp.SendKeys(chromedp.ID("member-user"), dana),
		chromedp.SetValue(chromedp.ID("member-role"), "write"),
		chromedp.Submit(chromedp.ID("member-user")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-member="dana"]`)),
	)
	if row := textOf(t, admin, `tr[data-member="dana"]`); !strings.Contains(row, "write") {
		t.Errorf("dana's row = %q, want the write role", row)
	}
	screenshot(t, admin, "org-members")

	do(t, user, "dana finds lab's private repository",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`a.title[href="/r/lab/private"]`)),
		chromedp.Click(chromedp.CSS(`a.title[href="/r/lab/private"]`)),
		chromedp.WaitVisible(chromedp.CSS(".side .copy")),
	)
	if badge := textOf(t, user, ".badge.private"); badge == "" {
		t.Error("lab/private is not marked private")
	}
}
