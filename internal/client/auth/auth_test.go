package auth

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad_RoundTripKeepsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	orig := `{"auths":{"other.example":{"auth":"dTpw","email":"x@example.com"}},"psFormat":"table {{.ID}}","proxies":{"default":{"httpProxy":"http://p"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Set(ctx, "docker.io", Credentials{Username: "alice", Password: "s3cr:et"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Set(ctx, "localhost:5000", Credentials{IdentityToken: "refresh"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["psFormat"]) != `"table {{.ID}}"` || raw["proxies"] == nil {
		t.Errorf("unknown keys lost: %s", b)
	}
	var auths map[string]map[string]string
	if err := json.Unmarshal(raw["auths"], &auths); err != nil {
		t.Fatal(err)
	}
	if got := auths[DockerHubKey]["auth"]; got != "YWxpY2U6czNjcjpldA==" {
		t.Errorf("docker.io filed as %v, want auth under %s", auths, DockerHubKey)
	}
	if auths["other.example"]["email"] != "x@example.com" {
		t.Errorf("unknown entry key lost: %v", auths["other.example"])
	}

	g, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Get(ctx, "index.docker.io")
	if err != nil || c.Username != "alice" || c.Password != "s3cr:et" {
		t.Errorf("Get(index.docker.io) = %+v, %v", c, err)
	}
	c, err = g.Get(ctx, "localhost:5000")
	if err != nil || c.IdentityToken != "refresh" {
		t.Errorf("Get(localhost:5000) = %+v, %v", c, err)
	}
	if _, err := g.Get(ctx, "nowhere.example"); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("Get(nowhere) err = %v, want ErrNotLoggedIn", err)
	}
	found, err := g.Remove(ctx, "docker.io")
	if err != nil || !found {
		t.Fatalf("Remove = %v, %v", found, err)
	}
	if _, err := g.Get(ctx, "docker.io"); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("after Remove: %v", err)
	}
}

func TestGet_MatchesURLKeysByHost(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"auths":{"https://registry.example:5000/v2/":{"auth":"dTpw"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Get(context.Background(), "registry.example:5000")
	if err != nil || c.Username != "u" || c.Password != "p" {
		t.Errorf("Get = %+v, %v", c, err)
	}
}

// writeHelper puts a fake docker-credential-test on PATH that knows one
// server and logs what it was asked to store.
func writeHelper(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	script := `#!/bin/sh
read server
case "$1" in
get)
  if [ "$server" = "helper.example" ]; then
    echo '{"ServerURL":"helper.example","Username":"bob","Secret":"hunter2"}'
  elif [ "$server" = "token.example" ]; then
    echo '{"ServerURL":"token.example","Username":"<token>","Secret":"tok"}'
  else
    echo "credentials not found in native keychain"; exit 1
  fi ;;
store) echo "$server" > "` + bin + `/stored" ;;
erase) exit 0 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return bin
}

func TestGet_CredentialHelpers(t *testing.T) {
	writeHelper(t)
	dir := t.TempDir()
	cfg := `{"credHelpers":{"helper.example":"test","token.example":"test"},"auths":{"plain.example":{"auth":"dTpw"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if c, err := f.Get(ctx, "helper.example"); err != nil || c.Username != "bob" || c.Password != "hunter2" {
		t.Errorf("helper.example = %+v, %v", c, err)
	}
	if c, err := f.Get(ctx, "token.example"); err != nil || c.IdentityToken != "tok" || c.Username != "" {
		t.Errorf("token.example = %+v, %v", c, err)
	}
	if c, err := f.Get(ctx, "plain.example"); err != nil || c.Username != "u" {
		t.Errorf("plain.example (no helper) = %+v, %v", c, err)
	}
}

func TestGet_CredsStoreFallsBackToFile(t *testing.T) {
	writeHelper(t)
	dir := t.TempDir()
	cfg := `{"credsStore":"test","auths":{"plain.example":{"auth":"dTpw"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if c, err := f.Get(ctx, "helper.example"); err != nil || c.Username != "bob" {
		t.Errorf("helper.example via credsStore = %+v, %v", c, err)
	}
	if c, err := f.Get(ctx, "plain.example"); err != nil || c.Username != "u" {
		t.Errorf("plain.example = %+v, %v", c, err)
	}
	if _, err := f.Get(ctx, "missing.example"); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("missing.example err = %v", err)
	}
}

func TestGet_MissingHelperIsAnError(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", t.TempDir())
	cfg := `{"credsStore":"nonexistent"}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(context.Background(), "x.example"); err == nil || errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("err = %v, want a helper error", err)
	}
}

func TestKeychain_AnonymousWithoutCredentials(t *testing.T) {
	k := Keychain{Dir: t.TempDir()}
	a, err := k.ResolveContext(context.Background(), fakeResource("r.example"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Authorization()
	if err != nil || cfg.Username != "" || cfg.Password != "" {
		t.Errorf("anonymous auth = %+v, %v", cfg, err)
	}
}

type fakeResource string

func (r fakeResource) String() string      { return string(r) }
func (r fakeResource) RegistryStr() string { return string(r) }
