package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
// (Basic, or the Bearer token flow) and saves them in docker's config.json
// as docker 28 does: when the token service hands out a refresh token, that
// is saved as the identity token instead of the password. Missing user name
// or password are prompted for on in when it is a terminal (the password
// without echo). Warnings go to errOut, as docker writes them to stderr.
func Login(ctx context.Context, opts LoginOptions, in io.Reader, out, errOut io.Writer) error {
	host := registryHost(opts.Server)
	if opts.Password != "" {
		fmt.Fprintln(errOut, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
		if opts.PasswordStdin {
			return errors.New("--password and --password-stdin are mutually exclusive")
		}
	}
	if opts.PasswordStdin {
		if opts.Username == "" {
			return errors.New("Must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(in)
		if err != nil {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		// docker trims one line ending, nothing else.
		opts.Password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if opts.Username == "" || opts.Password == "" {
		if err := prompt(&opts, in, out); err != nil {
			return err
		}
	}
	if opts.Password == "" {
		return errors.New("password required")
	}

	creds := auth.Credentials{Username: opts.Username, Password: opts.Password}
	identity, err := verifyLogin(ctx, opts.Remote, host, creds)
	if err != nil {
		return err
	}
	if identity != "" {
		creds.Password, creds.IdentityToken = "", identity
	}
	f, err := auth.Load(opts.DockerConfig)
	if err != nil {
		return err
	}
	inFile := f.Helper(host) == ""
	old, _ := f.Get(ctx, host)
	if err := f.Set(ctx, host, creds); err != nil {
		return fmt.Errorf("error saving credentials: %w", err)
	}
	if err := f.Save(); err != nil {
		return fmt.Errorf("error saving credentials: %w", err)
	}
	// docker warns once, when it writes a password (not a token) into the
	// file; an unchanged login writes nothing and says nothing.
	if inFile && creds.Password != "" && old != creds {
		fmt.Fprintf(errOut, "\nWARNING! Your credentials are stored unencrypted in '%s'.\n"+
			"Configure a credential helper to remove this warning. See\n"+
			"https://docs.docker.com/go/credential-store/\n\n", f.Path())
	}
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
			return errors.New("username required")
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
