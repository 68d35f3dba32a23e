package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/term"

	"github.com/wharf/wharf/internal/client/auth"
)

// LoginOptions are `wharf login`'s flags.
type LoginOptions struct {
	Remote
	// Server is the registry host; "" means docker.io.
	Server   string
	Username string
	Password string
	// PasswordStdin reads the password from the input reader.
	PasswordStdin bool
}

// Login checks the credentials against the registry's /v2/ challenge
// (Basic, or the Bearer token flow) and saves them in docker's
// config.json. Missing user name or password are prompted for on in
// when it is a terminal (the password without echo).
func Login(ctx context.Context, opts LoginOptions, in io.Reader, out io.Writer) error {
	host := registryHost(opts.Server)
	if opts.PasswordStdin {
		if opts.Password != "" {
			return errors.New("--password and --password-stdin are mutually exclusive")
		}
		if opts.Username == "" {
			return errors.New("must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(in)
		if err != nil {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		opts.Password = strings.TrimRight(string(b), "\r\n")
	}
	if opts.Username == "" || opts.Password == "" {
		if err := prompt(&opts, in, out); err != nil {
			return err
		}
	}
	if opts.Password == "" {
		return errors.New("error: password required")
	}

	creds := auth.Credentials{Username: opts.Username, Password: opts.Password}
	if err := verifyLogin(ctx, opts.Remote, host, creds); err != nil {
		return err
	}
	f, err := auth.Load(opts.DockerConfig)
	if err != nil {
		return err
	}
	if err := f.Set(ctx, host, creds); err != nil {
		return err
	}
	if err := f.Save(); err != nil {
		return err
	}
	fmt.Fprintf(out, "WARNING! Your credentials are stored unencrypted in '%s'.\n", f.Path())
	fmt.Fprintln(out, "Configure a credential helper to remove this warning.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Login Succeeded")
	return nil
}

// registryHost normalises a login server argument: "", docker.io and
// docker's https://index.docker.io/v1/ all mean Docker Hub; a URL is
// reduced to its host.
func registryHost(server string) string {
	s := strings.TrimSuffix(server, "/")
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io", strings.TrimSuffix(auth.DockerHubKey, "/"):
		return "docker.io"
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

// prompt asks for what is missing, like docker: the user name with the
// stored one as default, the password without echo.
func prompt(opts *LoginOptions, in io.Reader, out io.Writer) error {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("cannot perform an interactive login from a non TTY device; pass --username and --password-stdin")
	}
	r := bufio.NewReader(f)
	if opts.Username == "" {
		fmt.Fprint(out, "Username: ")
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read user name: %w", err)
		}
		opts.Username = strings.TrimSpace(line)
		if opts.Username == "" {
			return errors.New("error: username required")
		}
	}
	if opts.Password == "" {
		fmt.Fprint(out, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		opts.Password = string(b)
	}
	return nil
}

// verifyLogin asks the registry's /v2/ endpoint with the credentials,
// going through the Basic or Bearer flow that its challenge asks for.
func verifyLogin(ctx context.Context, r Remote, host string, creds auth.Credentials) error {
	t, err := r.target(ctx, apiHost(host))
	if err != nil {
		return err
	}
	reg, err := name.NewRegistry(apiHost(host), t.nameOpts()...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %w", host, err)
	}
	ch, err := transport.Ping(ctx, reg, t.rt)
	if err != nil {
		return explain(err, host, host)
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	rt, err := transport.NewWithContext(ctx, reg, auth.Authenticator(creds), t.rt, nil)
	if err != nil {
		return explainLogin(err, host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return explainLogin(err, host)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: login to %s failed: incorrect username or password", ErrUnauthorized, host)
	default:
		return fmt.Errorf("login to %s: registry answered %s to GET /v2/", host, resp.Status)
	}
}

// explainLogin reports a refused token request as wrong credentials.
func explainLogin(err error, host string) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w: login to %s failed: incorrect username or password", ErrUnauthorized, host)
	}
	return explain(err, host, host)
}

// apiHost is where a registry's API lives: Docker Hub's is not docker.io.
func apiHost(host string) string {
	if host == "docker.io" {
		return "index.docker.io"
	}
	return host
}

// LogoutOptions are `wharf logout`'s flags.
type LogoutOptions struct {
	Remote
	// Server is the registry host; "" means docker.io.
	Server string
}

// Logout removes the saved credentials for a registry.
func Logout(ctx context.Context, opts LogoutOptions, out io.Writer) error {
	host := registryHost(opts.Server)
	f, err := auth.Load(opts.DockerConfig)
	if err != nil {
		return err
	}
	found, err := f.Remove(ctx, host)
	if err != nil {
		return err
	}
	if !found {
		fmt.Fprintf(out, "Not logged in to %s\n", host)
		return nil
	}
	if err := f.Save(); err != nil {
		return err
	}
	fmt.Fprintf(out, "Removing login credentials for %s\n", host)
	return nil
}
