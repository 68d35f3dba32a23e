package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registrytest"
)

func runRootIn(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := NewRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestAccountCommands administers a data directory offline, then a
// server on that directory honours what was done.
func TestAccountCommands(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := runRootIn(ctx, stdin, append(args, "--data-dir", dir)...)
		if err != nil {
			t.Fatalf("wharf %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := runRootIn(ctx, "some-password\n", append(args, "--data-dir", dir)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("wharf %v: err = %v (%s%s), want one mentioning %q", args, err, out, errOut, want)
		}
	}

	if out := run("alice-password\n", "user", "add", "alice", "--password-stdin"); out != "user alice created\n" {
		t.Errorf("user add printed %q", out)
	}
	fails("already", "user", "add", "alice", "--password-stdin")
	fails("name", "user", "add", "Not_A_Name", "--password-stdin")
	fails("terminal", "user", "add", "bob")
	run("bob-password\n", "user", "add", "bob", "--password-stdin", "--admin")
	if out := run("", "user", "ls"); !regexp.MustCompile(`(?m)^alice\s+false\s`).MatchString(out) || !regexp.MustCompile(`(?m)^bob\s+true\s`).MatchString(out) {
		t.Errorf("user ls:\n%s", out)
	}

	run("", "org", "add", "acme")
	fails("already", "org", "add", "alice")
	run("", "org", "member", "add", "acme", "alice", "--role", "write")
	fails("role", "org", "member", "add", "acme", "bob", "--role", "owner")
	if out := run("", "org", "member", "ls", "acme"); !regexp.MustCompile(`(?m)^alice\s+write$`).MatchString(out) {
		t.Errorf("org member ls:\n%s", out)
	}

	secret := strings.TrimSpace(run("", "token", "create", "alice", "ci", "--scope", "read"))
	if !strings.HasPrefix(secret, auth.PATPrefix) {
		t.Fatalf("token create printed %q", secret)
	}
	list := run("", "token", "ls", "alice")
	m := regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+ci\s+read\s.*\sactive$`).FindStringSubmatch(list)
	if m == nil {
		t.Fatalf("token ls:\n%s", list)
	}

	if out := run("", "visibility", "alice/app"); out != "alice/app is private\n" {
		t.Errorf("visibility printed %q", out)
	}
	if out := run("", "visibility", "alice/app", "public"); out != "alice/app is public\n" {
		t.Errorf("visibility public printed %q", out)
	}
	fails("visibility", "visibility", "alice/app", "secret")

	// A server on the directory sees all of it.
	srv := registrytest.NewServer(t, registrytest.WithDataDir(dir), registrytest.WithAuth(""))
	sub, err := srv.Auth.Authenticate(ctx, "alice", secret, "")
	if err != nil || sub.Scope != auth.ScopeRead {
		t.Errorf("the token created offline: %+v, %v", sub, err)
	}
	if v, _ := srv.Auth.Visibility(ctx, "alice/app"); v != auth.Public {
		t.Errorf("visibility set offline: %s", v)
	}
	run("", "token", "revoke", "alice", m[1])
	if _, err := srv.Auth.Authenticate(ctx, "alice", secret, ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("the token revoked offline still authenticates: %v", err)
	}
	run("new-password\n", "user", "passwd", "alice", "--password-stdin")
	if _, err := srv.Auth.Authenticate(ctx, "alice", "new-password", ""); err != nil {
		t.Errorf("the password changed offline: %v", err)
	}
	run("", "user", "rm", "alice")
	fails("no such", "user", "rm", "alice")
}
