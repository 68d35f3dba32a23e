//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireTool returns the path of an external program, looked up on PATH
// and then in the Go bin directory (where setup.sh installs crane and
// conformance). A missing tool fails the test: setup.sh guarantees them.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("required tool %q not found on PATH or in %v; run `bash test/e2e/setup.sh` first", name, goBinDirs())
	return ""
}

// requireDockerEngine returns the docker CLI's path after checking that an
// engine answers it (setup.sh starts one).
func requireDockerEngine(t *testing.T) string {
	t.Helper()
	docker := requireTool(t, "docker")
	if out, err := cmd(docker, "info", "--format", "{{.ServerVersion}}").run(t); err != nil {
		t.Fatalf("no Docker engine answers (%v): %s; run `bash test/e2e/setup.sh`", err, out)
	}
	return docker
}

// goBinDirs are the directories `go install` may have put binaries in.
func goBinDirs() []string {
	var dirs []string
	if b, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) == 2 {
			if gobin := strings.TrimSpace(lines[0]); gobin != "" {
				dirs = append(dirs, gobin)
			}
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	return dirs
}

// command describes one external command run by a test.
type command struct {
	name    string
	args    []string
	stdin   io.Reader
	dir     string
	env     []string // added to the test process's environment
	timeout time.Duration
}

// run runs c, logs the command line and its combined output, and returns
// the output. The error is non-nil if the command failed or timed out.
func (c command) run(t *testing.T) (string, error) {
	t.Helper()
	timeout := c.timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	// Not t.Context(): that is cancelled before t.Cleanup functions run.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	cmd.Stdin = c.stdin
	cmd.Dir = c.dir
	if len(c.env) > 0 {
		cmd.Env = append(os.Environ(), c.env...)
	}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start).Round(time.Millisecond)
	line := strings.TrimSpace(filepath.Base(c.name) + " " + strings.Join(c.args, " "))
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: timed out after %s: %w", line, timeout, err)
	} else if err != nil {
		err = fmt.Errorf("%s: %w", line, err)
	}
	t.Logf("$ %s  (%s, err=%v)\n%s", line, elapsed, err, strings.TrimRight(out.String(), "\n"))
	return out.String(), err
}

// mustRun is run that fails the test on error.
func (c command) mustRun(t *testing.T) string {
	t.Helper()
	out, err := c.run(t)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cmd is shorthand for a command with default settings.
func cmd(name string, args ...string) command {
	return command{name: name, args: args}
}

// truncate shortens s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + " […]"
}
