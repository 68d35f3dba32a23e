package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registrytest"
)

// TestPush_PolicyRefusalShowsTheRegistrysMessage: a push that a policy
// refuses (here an immutable tag) is not reported as a login problem; the
// error names the rule as the registry did.
func TestPush_PolicyRefusalShowsTheRegistrysMessage(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth("s3cret-admin"))
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	if err := Login(ctx, LoginOptions{Remote: r, Server: host, Username: auth.AdminUser, PasswordStdin: true},
		strings.NewReader("s3cret-admin\n"), &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	tag := host + "/" + auth.AdminUser + "/app:1.0"
	localImage(t, st, testImage(t, "first", 1), tag)
	if err := Push(ctx, st, tag, PushOptions{Remote: r}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v2/namespaces/"+auth.AdminUser+"/policies",
		strings.NewReader(`{"immutable-tags":"1.*"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(auth.AdminUser, "s3cret-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set immutable-tags: %v %v", resp, err)
	}
	resp.Body.Close()

	localImage(t, st, testImage(t, "second", 1), tag)
	err = Push(ctx, st, tag, PushOptions{Remote: r}, &bytes.Buffer{})
	if !errors.Is(err, ErrDenied) || errors.Is(err, ErrUnauthorized) ||
		!strings.Contains(err.Error(), `tag "1.0" is immutable`) || strings.Contains(err.Error(), "wharf login") {
		t.Fatalf("push over an immutable tag: err = %v; want ErrDenied with the registry's message and no login advice", err)
	}
}
