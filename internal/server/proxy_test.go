package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// loginFrom sends a Basic login for alice from client, through a proxy
// on loopback that says so in X-Forwarded-For.
func loginFrom(t *testing.T, srv *registrytest.Server, client, password string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/token?service=wharf", nil)
	req.SetBasicAuth("alice", password)
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// Behind a trusted proxy, failed logins are counted per client, not per
// proxy: one guesser does not lock everyone out, and the realm is https.
func TestTrustedProxies(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		t.Run(map[bool]string{true: "trusted", false: "not trusted"}[trusted], func(t *testing.T) {
			srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword), registrytest.WithConfig(func(c *config.Config) {
				if trusted {
					c.TrustedProxies = []string{"127.0.0.0/8", "::1"}
				}
			}))
			must(t, srv.Auth.AddUser(context.Background(), "alice", userPassword, false))
			for range 6 {
				loginFrom(t, srv, "203.0.113.5", "wrong-password")
			}
			if got := loginFrom(t, srv, "203.0.113.5", userPassword).StatusCode; got != http.StatusTooManyRequests {
				t.Fatalf("right password from the guesser after 6 failures = %d, want 429", got)
			}
			got := loginFrom(t, srv, "198.51.100.7", userPassword).StatusCode
			if want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[trusted]; got != want {
				t.Errorf("right password from another client = %d, want %d", got, want)
			}

			req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil)
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			realm := resp.Header.Get("WWW-Authenticate")
			if https := strings.Contains(realm, `realm="https://`); https != trusted {
				t.Errorf("challenge %q: https realm %v, want %v", realm, https, trusted)
			}
		})
	}
}
