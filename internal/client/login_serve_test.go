package client

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/auth"
	clientauth "github.com/wharf/wharf/internal/client/auth"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// TestLogin_WharfServeTokenAuth runs the tutorial's login against a wharf
// server that requires token auth. By default wharf hands out no refresh
// token (as Docker Hub), so the password is saved; with
// auth.login_refresh_tokens docker's flow yields a refresh token, which is
// saved as the identity token instead. Either then carries push and pull.
func TestLogin_WharfServeTokenAuth(t *testing.T) {
	t.Run("default", func(t *testing.T) { testLoginWharfServe(t, false) })
	t.Run("login refresh tokens", func(t *testing.T) { testLoginWharfServe(t, true) })
}

func testLoginWharfServe(t *testing.T, refresh bool) {
	srv := registrytest.NewServer(t, registrytest.WithAuth("s3cret-admin"),
		registrytest.WithConfig(func(c *config.Config) { c.Auth.LoginRefreshTokens = refresh }))
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	tag := host + "/" + auth.AdminUser + "/image-gallery:v1"
	want := localImage(t, st, testImage(t, "gallery", 2), tag)

	err := Push(ctx, st, tag, PushOptions{Remote: r}, &bytes.Buffer{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "run `wharf login "+host+"`") {
		t.Fatalf("push before login: err = %v, want ErrUnauthorized saying to run wharf login %s", err, host)
	}

	err = Login(ctx, LoginOptions{Remote: r, Server: host, Username: auth.AdminUser, PasswordStdin: true},
		strings.NewReader("wrong\n"), &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("login with a wrong password: err = %v, want ErrUnauthorized", err)
	}
	var out, errOut bytes.Buffer
	if err := Login(ctx, LoginOptions{Remote: r, Server: host, Username: auth.AdminUser, PasswordStdin: true},
		strings.NewReader("s3cret-admin\n"), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Login Succeeded\n" {
		t.Errorf("login printed %q", out.String())
	}
	f, err := clientauth.Load(r.DockerConfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Get(ctx, host)
	switch {
	case err != nil:
		t.Fatal(err)
	case refresh && (c.Username != auth.AdminUser || c.Password != "" || c.IdentityToken == ""):
		t.Fatalf("saved %+v; want the user name and an identity token, no password", c)
	case !refresh && (c.Username != auth.AdminUser || c.Password != "s3cret-admin" || c.IdentityToken != ""):
		t.Fatalf("saved %+v; want the user name and password, no identity token", c)
	}

	if err := Push(ctx, st, tag, PushOptions{Remote: r}, &bytes.Buffer{}); err != nil {
		t.Fatalf("push with the saved login: %v", err)
	}
	fresh := newStore(t)
	if err := Pull(ctx, fresh, tag, PullOptions{Remote: r}, &bytes.Buffer{}); err != nil {
		t.Fatalf("pull with the saved login: %v", err)
	}
	if _, got, err := fresh.Image(ctx, tag); err != nil || got != want {
		t.Errorf("pulled %s (%v), want %s", got, err, want)
	}

	// Someone not logged in is told what to do.
	err = Pull(ctx, newStore(t), tag, PullOptions{Remote: testRemote(t)}, &bytes.Buffer{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "run `wharf login "+host+"`") {
		t.Errorf("pull of a private repository without login: err = %v, want ErrUnauthorized saying to run wharf login %s", err, host)
	}
}
