package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/client/auth"
)

// basicRegistry answers /v2/ with a Basic challenge for user:pass.
func basicRegistry(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if r.URL.Path != "/v2/" {
			http.NotFound(w, r)
			return
		}
		if !ok || u != "alice" || p != "wonderland" {
			w.Header().Set("WWW-Authenticate", `Basic realm="wharf"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// bearerRegistry answers /v2/ with a Bearer challenge whose token service
// hands a token for user:pass.
func bearerRegistry(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			u, p, ok := r.BasicAuth()
			if !ok || u != "alice" || p != "wonderland" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"token":"good-token","access_token":"good-token"}`))
		case "/v2/":
			if r.Header.Get("Authorization") != "Bearer good-token" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="wharf"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLogin(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func(*testing.T) *httptest.Server
	}{{"basic", basicRegistry}, {"bearer", bearerRegistry}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv(t)
			host := strings.TrimPrefix(srv.URL, "http://")
			ctx := context.Background()
			r := Remote{DockerConfig: t.TempDir(), Home: t.TempDir()}

			var out bytes.Buffer
			err := Login(ctx, LoginOptions{Remote: r, Server: host, Username: "alice", Password: "nope"}, nil, &out)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("wrong password: err = %v, want ErrUnauthorized", err)
			}
			f, _ := auth.Load(r.DockerConfig)
			if _, err := f.Get(ctx, host); !errors.Is(err, auth.ErrNotLoggedIn) {
				t.Fatalf("a failed login saved credentials (%v)", err)
			}

			out.Reset()
			err = Login(ctx, LoginOptions{Remote: r, Server: host, Username: "alice", PasswordStdin: true},
				strings.NewReader("wonderland\n"), &out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(out.String(), "Login Succeeded\n") {
				t.Errorf("output %q does not end with Login Succeeded", out.String())
			}
			f, _ = auth.Load(r.DockerConfig)
			if c, err := f.Get(ctx, host); err != nil || c.Username != "alice" || c.Password != "wonderland" {
				t.Errorf("saved credentials = %+v, %v", c, err)
			}

			out.Reset()
			if err := Logout(ctx, LogoutOptions{Remote: r, Server: host}, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != "Removing login credentials for "+host+"\n" {
				t.Errorf("logout printed %q", out.String())
			}
			out.Reset()
			if err := Logout(ctx, LogoutOptions{Remote: r, Server: host}, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != "Not logged in to "+host+"\n" {
				t.Errorf("second logout printed %q", out.String())
			}
		})
	}
}

func TestLogin_NoTerminalNoPassword(t *testing.T) {
	srv := basicRegistry(t)
	r := Remote{DockerConfig: t.TempDir(), Home: t.TempDir()}
	err := Login(context.Background(), LoginOptions{Remote: r, Server: srv.URL, Username: "alice"}, strings.NewReader(""), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "non TTY") {
		t.Errorf("err = %v, want the non-TTY refusal", err)
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "docker.io",
		"docker.io":                    "docker.io",
		"https://index.docker.io/v1/":  "docker.io",
		"localhost:5000":               "localhost:5000",
		"https://registry.local:5000/": "registry.local:5000",
	} {
		if got := registryHost(in); got != want {
			t.Errorf("registryHost(%q) = %q, want %q", in, got, want)
		}
	}
}
