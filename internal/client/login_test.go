package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

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

// tokenRegistry answers /v2/ with a Bearer challenge and runs docker's
// token flow for alice:wonderland: GET /token with Basic credentials (and,
// when offline_token=true, a refresh token in the answer), and POST /token
// with grant_type=refresh_token for an access token. With refresh false it
// is a service that never hands out refresh tokens.
func tokenRegistry(t *testing.T, refresh bool) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token" && r.Method == http.MethodGet:
			u, p, ok := r.BasicAuth()
			if !ok || u != "alice" || p != "wonderland" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			q := r.URL.Query()
			if q.Get("service") != "wharf" {
				t.Errorf("token request for service %q", q.Get("service"))
			}
			body := map[string]string{"token": "good-token", "access_token": "good-token"}
			if refresh && q.Get("offline_token") == "true" && q.Get("client_id") == "docker" {
				body["refresh_token"] = "refresh-for-alice"
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(body)
		case r.URL.Path == "/token" && r.Method == http.MethodPost:
			if r.FormValue("grant_type") != "refresh_token" || r.FormValue("refresh_token") != "refresh-for-alice" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"good-token"}`))
		case r.URL.Path == "/v2/":
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

func bearerRegistry(t *testing.T) *httptest.Server { return tokenRegistry(t, false) }

// unencryptedWarning is what docker 28 prints to stderr when it writes a
// password into config.json.
func unencryptedWarning(dir string) string {
	return "\nWARNING! Your credentials are stored unencrypted in '" + filepath.Join(dir, "config.json") + "'.\n" +
		"Configure a credential helper to remove this warning. See\n" +
		"https://docs.docker.com/go/credential-store/\n\n"
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

			var out, errOut bytes.Buffer
			err := Login(ctx, LoginOptions{Remote: r, Server: host, Username: "alice", Password: "nope"}, nil, &out, &errOut)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("wrong password: err = %v, want ErrUnauthorized", err)
			}
			if errOut.String() != "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n" {
				t.Errorf("--password: stderr %q, want docker's warning", errOut.String())
			}
			f, _ := auth.Load(r.DockerConfig)
			if _, err := f.Get(ctx, host); !errors.Is(err, auth.ErrNotLoggedIn) {
				t.Fatalf("a failed login saved credentials (%v)", err)
			}

			out.Reset()
			errOut.Reset()
			err = Login(ctx, LoginOptions{Remote: r, Server: host, Username: "alice", PasswordStdin: true},
				strings.NewReader("wonderland\n"), &out, &errOut)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != "Login Succeeded\n" {
				t.Errorf("stdout %q, want Login Succeeded", out.String())
			}
			if want := unencryptedWarning(r.DockerConfig); errOut.String() != want {
				t.Errorf("stderr %q, want %q", errOut.String(), want)
			}
			f, _ = auth.Load(r.DockerConfig)
			if c, err := f.Get(ctx, host); err != nil || c.Username != "alice" || c.Password != "wonderland" || c.IdentityToken != "" {
				t.Errorf("saved credentials = %+v, %v", c, err)
			}

			// The same login again changes nothing, and docker then says nothing.
			errOut.Reset()
			if err := Login(ctx, LoginOptions{Remote: r, Server: host, Username: "alice", PasswordStdin: true},
				strings.NewReader("wonderland"), &bytes.Buffer{}, &errOut); err != nil {
				t.Fatal(err)
			}
			if errOut.Len() != 0 {
				t.Errorf("unchanged login warned: %q", errOut.String())
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

func TestLogin_SavesTheRefreshTokenAsIdentityToken(t *testing.T) {
	srv := tokenRegistry(t, true)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := Remote{DockerConfig: t.TempDir(), Home: t.TempDir()}
	var out, errOut bytes.Buffer
	if err := Login(ctx, LoginOptions{Remote: r, Server: host, Username: "alice", PasswordStdin: true},
		strings.NewReader("wonderland\n"), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Login Succeeded\n" || errOut.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want Login Succeeded and no warning (no password is stored)", out.String(), errOut.String())
	}
	// As docker writes it: "auth" is "alice:" and the token sits beside it.
	b, err := os.ReadFile(filepath.Join(r.DockerConfig, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("alice:")), "identitytoken": "refresh-for-alice"}
	if got := file.Auths[host]; !maps.Equal(got, want) {
		t.Errorf("config.json auths[%s] = %v, want %v", host, got, want)
	}

	// The keychain hands the token to go-containerregistry, whose bearer
	// transport trades it (POST grant_type=refresh_token) for access.
	a, err := auth.Keychain{Dir: r.DockerConfig}.Resolve(fakeRegistry(host))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Authorization()
	if err != nil || cfg.IdentityToken != "refresh-for-alice" || cfg.Password != "" {
		t.Fatalf("keychain gives %+v, %v; want the identity token", cfg, err)
	}
	reg, _ := name.NewRegistry(host, name.Insecure)
	rt, err := transport.NewWithContext(ctx, reg, a, http.DefaultTransport, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt}).Get(srv.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ with the identity token: %s", resp.Status)
	}
}

// fakeRegistry is an authn.Resource for a host.
type fakeRegistry string

func (r fakeRegistry) String() string      { return string(r) }
func (r fakeRegistry) RegistryStr() string { return string(r) }

func TestLogin_NoTerminalNoPassword(t *testing.T) {
	srv := basicRegistry(t)
	r := Remote{DockerConfig: t.TempDir(), Home: t.TempDir()}
	err := Login(context.Background(), LoginOptions{Remote: r, Server: srv.URL, Username: "alice"}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
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
