package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runRoot(ctx context.Context, args ...string) (string, error) {
	cmd := NewRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestServeHelp_ListsSettings(t *testing.T) {
	out, err := runRoot(t.Context(), "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--addr", "--data-dir", "--config", "--sparse-manifests", "--log-level", "--max-concurrent-requests", "--idle-timeout",
		"WHARF_ADDR", "WHARF_DATA_DIR", "WHARF_CONFIG", "WHARF_SPARSE_MANIFESTS", ":5000", "./wharf-data",
		"--login-refresh-tokens", "WHARF_LOGIN_REFRESH_TOKENS"} {
		if !strings.Contains(out, flag) {
			t.Errorf("serve --help does not mention %s", flag)
		}
	}
}

func TestServe_RejectsBadConfiguration(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantText []string
	}{
		{[]string{"serve", "--addr", "nonsense"}, []string{"addr", `"nonsense"`, "host:port"}},
		{[]string{"serve", "--log-level", "loud"}, []string{"log.level", `"loud"`}},
		{[]string{"serve", "--config", "/does/not/exist.yaml"}, []string{"/does/not/exist.yaml"}},
		{[]string{"serve", "--max-concurrent-requests", "many"}, []string{"--max-concurrent-requests", `"many"`}},
		{[]string{"serve", "--addr", "nonsense", "--log-level", "loud"}, []string{`"nonsense"`, `"loud"`}},
	} {
		out, err := runRoot(t.Context(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), "invalid configuration") {
			t.Errorf("%v: err = %v, want an invalid configuration error", tc.args, err)
			continue
		}
		for _, w := range tc.wantText {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %s", tc.args, err, w)
			}
		}
		if strings.Contains(out, "Usage:") {
			t.Errorf("%v: a configuration error printed the usage:\n%s", tc.args, out)
		}
	}
}

func TestServe_ReadsTheEnvironment(t *testing.T) {
	for _, tc := range []struct{ key, value, wantText string }{
		{"WHARF_LOG_LEVEL", "loud", `"loud"`},
		{"WHARF_SPARSE_MANIFESTS", "maybe", "WHARF_SPARSE_MANIFESTS"},
		{"WHARF_CONFIG", "/does/not/exist.yaml", "/does/not/exist.yaml"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Setenv(tc.key, tc.value)
			_, err := runRoot(t.Context(), "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("%s=%s: err = %v, want it to mention %s", tc.key, tc.value, err, tc.wantText)
			}
		})
	}
}

func TestServe_BadConfigurationTouchesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := runRoot(t.Context(), "serve", "--data-dir", dir, "--log-level", "loud"); err == nil {
		t.Fatal("serve accepted --log-level loud")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("invalid configuration still created the data directory (stat: %v)", err)
	}
}

func TestServe_RejectsArguments(t *testing.T) {
	if _, err := runRoot(t.Context(), "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "extra"); err == nil {
		t.Error("serve accepted a positional argument")
	}
}

func TestServe_UnusableDataDirIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runRoot(t.Context(), "serve", "--addr", "127.0.0.1:0", "--data-dir", file); err == nil {
		t.Error("serve accepted a data directory that is a file")
	}
}

func TestServe_AddrInUseIsAnError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	done := make(chan error, 1)
	go func() {
		_, err := runRoot(t.Context(), "serve", "--addr", taken.Addr().String(), "--data-dir", t.TempDir())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("serve on a taken address returned nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve on a taken address did not return")
	}
}

// startServe runs `wharf serve` with args until the test ends and returns
// the address it listens on (learnt from its JSON log), a cancel that asks
// it to stop, and a channel with its result.
func startServe(t *testing.T, args ...string) (addr string, stop context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "wharf listening" {
				select {
				case listening <- rec.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	result := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		cmd := NewRootCmd()
		cmd.SetOut(io.Discard)
		cmd.SetErr(pw)
		cmd.SetArgs(append([]string{"serve", "--log-format", "json", "--log-level", "info"}, args...))
		err := cmd.ExecuteContext(ctx)
		pw.Close()
		result <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("serve still running 10s after the test ended")
		}
	})
	select {
	case addr = <-listening:
	case err := <-result:
		result <- err
		t.Fatalf("serve returned before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not log that it is listening within 10s")
	}
	return addr, cancel, result
}

func TestServe_ServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	addr, stop, done := startServe(t, "--addr", "127.0.0.1:0", "--data-dir", dir)
	base := "http://" + addr

	// Auth is on by default: /v2/ asks for a token.
	for path, want := range map[string]int{"/readyz": http.StatusOK, "/v2/": http.StatusUnauthorized} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="http://`+addr+`/token"`) {
			t.Errorf("GET %s: WWW-Authenticate %q, want a Bearer challenge", path, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "wharf.db")); err != nil {
		t.Errorf("the database is not in --data-dir: %v", err)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s of cancel")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still accepting connections after serve returned")
	}
}

// TestServe_SparseManifestsFlagReachesTheServer: a manifest naming a
// config blob that was never pushed is refused by default and accepted
// with --sparse-manifests.
func TestServe_SparseManifestsFlagReachesTheServer(t *testing.T) {
	const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,` +
		`"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`
	for _, tc := range []struct {
		flags []string
		want  int
	}{
		{nil, http.StatusBadRequest},
		{[]string{"--sparse-manifests"}, http.StatusCreated},
	} {
		addr, _, _ := startServe(t, append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--auth=none"}, tc.flags...)...)
		req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v2/sparse/app/manifests/v1", strings.NewReader(manifest))
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("serve %v: manifest PUT = %d %s, want %d", tc.flags, resp.StatusCode, body, tc.want)
		}
	}
}
