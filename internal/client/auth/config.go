// Package auth reads and writes docker's credentials file (config.json) so
// that wharf and docker share logins, and resolves credentials for
// go-containerregistry through an authn.Keychain.
package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DockerHubKey is the key docker uses for docker.io in config.json.
const DockerHubKey = "https://index.docker.io/v1/"

// ErrNotLoggedIn means there are no credentials for the server.
var ErrNotLoggedIn = errors.New("not logged in")

// Credentials are what one login stores for one registry.
type Credentials struct {
	Username string
	Password string
	// IdentityToken is an OAuth2 refresh token, when the registry gave one
	// instead of a password.
	IdentityToken string
}

// Empty reports whether c holds nothing.
func (c Credentials) Empty() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == ""
}

// authEntry is one value under "auths", as docker writes it.
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	// Old or hand-written files may carry the parts separately.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Keys docker or other tools add that wharf does not use are kept.
	extra map[string]json.RawMessage
}

// File is a loaded config.json. Keys wharf does not know are written back
// as they were read.
type File struct {
	path        string
	raw         map[string]json.RawMessage
	auths       map[string]*authEntry
	credsStore  string
	credHelpers map[string]string
}

// Dir returns docker's configuration directory: $DOCKER_CONFIG, else
// ~/.docker.
func Dir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// Load reads dir/config.json (dir "" means Dir()). A missing file is an
// empty configuration.
func Load(dir string) (*File, error) {
	if dir == "" {
		dir = Dir()
	}
	f := &File{
		path:        filepath.Join(dir, "config.json"),
		raw:         map[string]json.RawMessage{},
		auths:       map[string]*authEntry{},
		credHelpers: map[string]string{},
	}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.raw); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", f.path, err)
	}
	if v, ok := f.raw["auths"]; ok {
		var auths map[string]map[string]json.RawMessage
		if err := json.Unmarshal(v, &auths); err != nil {
			return nil, fmt.Errorf("%s: \"auths\": %w", f.path, err)
		}
		for k, fields := range auths {
			e := &authEntry{extra: map[string]json.RawMessage{}}
			for name, val := range fields {
				var dst *string
				switch name {
				case "auth":
					dst = &e.Auth
				case "identitytoken":
					dst = &e.IdentityToken
				case "username":
					dst = &e.Username
				case "password":
					dst = &e.Password
				default:
					e.extra[name] = val
					continue
				}
				if err := json.Unmarshal(val, dst); err != nil {
					return nil, fmt.Errorf("%s: auths[%q].%s: %w", f.path, k, name, err)
				}
			}
			f.auths[k] = e
		}
	}
	if v, ok := f.raw["credsStore"]; ok {
		if err := json.Unmarshal(v, &f.credsStore); err != nil {
			return nil, fmt.Errorf("%s: \"credsStore\": %w", f.path, err)
		}
	}
	if v, ok := f.raw["credHelpers"]; ok {
		if err := json.Unmarshal(v, &f.credHelpers); err != nil {
			return nil, fmt.Errorf("%s: \"credHelpers\": %w", f.path, err)
		}
	}
	return f, nil
}

// Path is the file's location.
func (f *File) Path() string { return f.path }

// ServerKey maps a registry host to the key docker files it under:
// docker.io (and its aliases) become https://index.docker.io/v1/.
func ServerKey(host string) string {
	switch host {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io", DockerHubKey:
		return DockerHubKey
	}
	return host
}

// hostOf reduces a config.json key ("https://host/v1/", "host") to its
// host, as docker's ConvertToHostname does.
func hostOf(key string) string {
	if key == DockerHubKey {
		return "docker.io"
	}
	s := key
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return u.Host
		}
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

// Helper returns the credential helper that stores a registry host's
// credentials, or "" when they go into the file itself.
func (f *File) Helper(host string) string { return f.helperFor(ServerKey(host)) }

// helperFor returns the credential helper configured for key, or "".
func (f *File) helperFor(key string) string {
	if h, ok := f.credHelpers[key]; ok {
		return h
	}
	if h, ok := f.credHelpers[hostOf(key)]; ok {
		return h
	}
	return f.credsStore
}

// Get returns the credentials stored for a registry host ("docker.io",
// "localhost:5000"), asking a credential helper when one is configured.
// It returns ErrNotLoggedIn when there are none.
func (f *File) Get(ctx context.Context, host string) (Credentials, error) {
	key := ServerKey(host)
	if h := f.helperFor(key); h != "" {
		c, err := helperGet(ctx, h, key)
		if err != nil || !c.Empty() {
			return c, err
		}
	}
	e := f.auths[key]
	if e == nil {
		want := hostOf(key)
		for k, v := range f.auths {
			if hostOf(k) == want {
				e = v
				break
			}
		}
	}
	if e == nil {
		return Credentials{}, ErrNotLoggedIn
	}
	c := Credentials{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
	if e.Auth != "" {
		dec, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return Credentials{}, fmt.Errorf("%s: auths[%q].auth is not base64: %w", f.path, key, err)
		}
		user, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return Credentials{}, fmt.Errorf("%s: auths[%q].auth is not user:password", f.path, key)
		}
		c.Username, c.Password = user, pass
	}
	if c.Empty() {
		return Credentials{}, ErrNotLoggedIn
	}
	return c, nil
}

// Set stores credentials for a registry host: in its credential helper when
// one is configured (docker does the same), else in the file. Call Save to
// write the file.
func (f *File) Set(ctx context.Context, host string, c Credentials) error {
	key := ServerKey(host)
	if h := f.helperFor(key); h != "" {
		if err := helperStore(ctx, h, key, c); err != nil {
			return err
		}
		// docker leaves an empty entry so that `docker info` lists the login.
		f.auths[key] = &authEntry{extra: map[string]json.RawMessage{}}
		return nil
	}
	e := f.auths[key]
	if e == nil {
		e = &authEntry{extra: map[string]json.RawMessage{}}
		f.auths[key] = e
	}
	e.Username, e.Password = "", ""
	e.Auth = ""
	if c.Username != "" || c.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
	}
	e.IdentityToken = c.IdentityToken
	return nil
}

// Remove forgets the credentials for a registry host, in the file and in
// its credential helper. It reports whether there were any.
func (f *File) Remove(ctx context.Context, host string) (bool, error) {
	key := ServerKey(host)
	found := false
	if h := f.helperFor(key); h != "" {
		ok, err := helperErase(ctx, h, key)
		if err != nil {
			return false, err
		}
		found = ok
	}
	want := hostOf(key)
	for k := range f.auths {
		if k == key || hostOf(k) == want {
			delete(f.auths, k)
			found = true
		}
	}
	return found, nil
}

// Save writes the file atomically with mode 0600, keeping every key it
// does not manage.
func (f *File) Save() error {
	auths := make(map[string]map[string]any, len(f.auths))
	for k, e := range f.auths {
		m := map[string]any{}
		for name, v := range e.extra {
			m[name] = v
		}
		if e.Auth != "" {
			m["auth"] = e.Auth
		}
		if e.IdentityToken != "" {
			m["identitytoken"] = e.IdentityToken
		}
		if e.Username != "" {
			m["username"] = e.Username
		}
		if e.Password != "" {
			m["password"] = e.Password
		}
		auths[k] = m
	}
	b, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	f.raw["auths"] = b
	out, err := json.MarshalIndent(f.raw, "", "\t")
	if err != nil {
		return err
	}
	out = append(out, '\n')
	return writeFileAtomic(f.path, out, 0o600)
}

// writeFileAtomic writes b to a temporary file beside path and renames it
// into place, so that a reader never sees half a file.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}
