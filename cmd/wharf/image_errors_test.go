package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/client"
	"github.com/wharf/wharf/internal/client/store"
	"github.com/wharf/wharf/internal/registrytest"
)

// TestImageCommands_ErrorsSayWhatIsWrong runs failing commands in-process:
// each returns an error that errors.Is recognises and whose text names the
// problem, never a raw registry JSON body.
func TestImageCommands_ErrorsSayWhatIsWrong(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	tests := []struct {
		name    string
		args    []string
		wantIs  error
		wantMsg string
	}{
		{"tag of an unknown image", []string{"image", "tag", "nope", "x:1"}, store.ErrNotFound, "No such image: nope"},
		{"inspect of an unknown image", []string{"image", "inspect", "nope:1"}, store.ErrNotFound, "No such image: nope:1"},
		{"rm of an unknown image", []string{"rmi", "nope"}, store.ErrNotFound, "No such image: nope"},
		{"save of an unknown image", []string{"image", "save", "-o", t.TempDir() + "/x.tar", "nope"}, store.ErrNotFound, "No such image: nope"},
		{"push of an image that is not here", []string{"image", "push", host + "/alice/nope:1"}, store.ErrNotFound, "An image does not exist locally with the tag: " + host + "/alice/nope"},
		{"pull of an unknown repository", []string{"image", "pull", host + "/alice/nope:1"}, client.ErrNameUnknown, "alice/nope"},
		{"pull from a closed port", []string{"pull", closed + "/alice/x:1"}, client.ErrUnreachable, "connection refused"},
		{"invalid reference", []string{"image", "tag", "nope", "Not Valid"}, nil, "invalid reference format"},
		{"unknown ls filter", []string{"image", "ls", "--filter", "colour=red"}, nil, "invalid filter 'colour'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wharfEnv(t)
			out, _, err := wharf(t, nil, tt.args...)
			if err == nil {
				t.Fatalf("wharf %v succeeded, want an error", tt.args)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if strings.Contains(out+err.Error(), "{") {
				t.Errorf("a raw JSON dump reached the user: stdout %q, error %q", out, err)
			}
		})
	}
}

// TestMain_ErrorExitsOneWithOneLine runs the real main (the test binary
// re-executed): an error is one "wharf: …" line on stderr, nothing on
// stdout, and exit code 1, with no usage text, Go stack trace or JSON.
func TestMain_ErrorExitsOneWithOneLine(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"unknown image", []string{"image", "tag", "nope", "x:1"}, "wharf: No such image: nope\n"},
		{"unknown repository at the registry", []string{"pull", host + "/alice/nope:1"}, ""},
		{"wrong number of arguments", []string{"image", "tag", "only-one"}, "wharf: accepts 2 arg(s), received 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(),
				"WHARF_TEST_MAIN_ARGS="+strings.Join(tt.args, "\n"),
				"WHARF_HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("wharf %v: %v, want exit status 1 (stderr %q)", tt.args, err, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing (a pull says Pulling from only once the manifest is found)", stdout.String())
			}
			got := stderr.String()
			if tt.wantStderr != "" && got != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
			if !strings.HasPrefix(got, "wharf: ") || strings.Count(got, "\n") != 1 {
				t.Errorf("stderr is not one wharf: line: %q", got)
			}
			for _, bad := range []string{"goroutine ", "panic", "Usage:", "{"} {
				if strings.Contains(got, bad) {
					t.Errorf("stderr contains %q: %q", bad, got)
				}
			}
		})
	}
}
