//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	readyTimeout    = 30 * time.Second
	readyPoll       = 50 * time.Millisecond
	shutdownTimeout = 15 * time.Second
	logTailBytes    = 16 << 10
)

// wharfServer is a running `wharf serve` process.
type wharfServer struct {
	Addr    string // host:port it listens on
	URL     string // http://Addr
	DataDir string

	// storeArgs and env let wharf's offline commands (user add, token
	// create) open the stores this server runs on.
	storeArgs []string
	env       []string

	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited; then waitErr is set
	waitErr error
	failed  bool        // startup failed and was reported with the log
	killed  atomic.Bool // killed on purpose by the test (kill)
	stopped bool        // stop ran: a test stopped the server before its end
}

// startWharf starts wharf on a free loopback port with a fresh data dir and
// stops it with SIGTERM when the test ends.
func startWharf(t *testing.T, extraArgs ...string) *wharfServer {
	t.Helper()
	return startWharfAt(t, freeLoopbackAddr(t), extraArgs...)
}

// startWharfAt is startWharf on a given address (the docker test needs
// 127.0.0.1:5000).
func startWharfAt(t *testing.T, addr string, extraArgs ...string) *wharfServer {
	t.Helper()
	return startWharfEnv(t, addr, nil, extraArgs...)
}

// adminPassword is the first admin's password of startWharfAuth servers.
const adminPassword = "e2e-admin-password"

// startWharfAuth starts wharf with accounts and token auth on, its admin
// user's password being adminPassword.
func startWharfAuth(t *testing.T, addr string, extraArgs ...string) *wharfServer {
	t.Helper()
	return startWharfEnv(t, addr, []string{"WHARF_ADMIN_PASSWORD=" + adminPassword}, append([]string{"--auth=token"}, extraArgs...)...)
}

// startWharfEnv is startWharfAt with environment variables added.
func startWharfEnv(t *testing.T, addr string, env []string, extraArgs ...string) *wharfServer {
	t.Helper()
	s := launchWharf(t, addr, env, extraArgs...)
	s.mustBeReady(t)
	return s
}

// launchWharf starts wharf like startWharfEnv but does not wait for it
// to be ready: a replica restarted from a goroutine, where the test must
// not stop, waits for it with waitReady and reports the error.
func launchWharf(t *testing.T, addr string, env []string, extraArgs ...string) *wharfServer {
	t.Helper()
	s := &wharfServer{
		Addr:    addr,
		URL:     "http://" + addr,
		DataDir: t.TempDir(),
		env:     env,
		logPath: filepath.Join(t.TempDir(), "wharf.log"),
		exited:  make(chan struct{}),
	}
	s.storeArgs = []string{"--data-dir", s.DataDir}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor

	args := []string{"serve", "--addr", addr, "--data-dir", s.DataDir}
	if !slices.ContainsFunc(extraArgs, func(a string) bool { return strings.HasPrefix(a, "--auth") }) {
		// Tests about the registry itself run it open; auth tests say so.
		args = append(args, "--auth=none")
	}
	args = append(args, extraArgs...)
	if slices.ContainsFunc(extraArgs, func(a string) bool { return strings.HasPrefix(a, "--tls") }) {
		s.URL = "https://" + addr
	}
	s.cmd = exec.Command(wharfBin, args...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	// If the test binary dies, take the server with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t.Logf("starting %s %v", wharfBin, args)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start wharf: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// mustBeReady waits for a launched server and fails the test, with the
// server's log, if it does not become ready.
func (s *wharfServer) mustBeReady(t *testing.T) {
	t.Helper()
	if err := s.waitReady(); err != nil {
		s.failed = true
		t.Fatalf("wharf on %s not ready: %v\n--- wharf log ---\n%s", s.Addr, err, s.logTail())
	}
}

// waitReady polls /readyz until it answers 200, the process exits, or
// readyTimeout passes.
func (s *wharfServer) waitReady() error {
	// Readiness only: the certificate is checked by the tests that care.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("process exited before ready: %v", s.waitErr)
		default:
		}
		resp, err := client.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		last = err
		time.Sleep(readyPoll)
	}
	return fmt.Errorf("timed out after %s; last: %v", readyTimeout, last)
}

// stop sends SIGTERM and waits for a clean exit; it kills the process if
// it does not stop in time. A non-zero exit after SIGTERM fails the test.
// Once stopped, stop does nothing (a test may stop a server early).
func (s *wharfServer) stop(t *testing.T) {
	if s.stopped {
		return
	}
	s.stopped = true
	select {
	case <-s.exited:
		if s.failed || s.killed.Load() {
			return
		}
		t.Errorf("wharf on %s exited before the test ended: %v\n--- wharf log ---\n%s", s.Addr, s.waitErr, s.logTail())
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		var exitErr *exec.ExitError
		if errors.As(s.waitErr, &exitErr) {
			t.Errorf("wharf on %s exited with %v after SIGTERM\n--- wharf log ---\n%s", s.Addr, s.waitErr, s.logTail())
			return
		}
	case <-time.After(shutdownTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("wharf on %s did not stop within %s of SIGTERM; killed\n--- wharf log ---\n%s", s.Addr, shutdownTimeout, s.logTail())
		return
	}
	if t.Failed() {
		t.Logf("--- wharf log (%s) ---\n%s", s.Addr, s.logTail())
	}
}

// kill ends the process with SIGKILL, as a machine or OOM killer would,
// and waits until it has exited. A process that had already exited is an
// error, with its log: it must not pass for one the test killed.
func (s *wharfServer) kill() error {
	select {
	case <-s.exited:
		return fmt.Errorf("wharf on %s had exited before it was killed: %v\n--- wharf log ---\n%s", s.Addr, s.waitErr, s.logTail())
	default:
	}
	s.killed.Store(true)
	_ = s.cmd.Process.Kill()
	<-s.exited
	return nil
}

// logTail returns the end of the server's log.
func (s *wharfServer) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		b = append([]byte("[…]\n"), b...)
	}
	return string(b)
}

// freeLoopbackAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// addUser creates a user in srv's stores with `wharf user add`, beside
// the running server.
func addUser(t *testing.T, srv *wharfServer, name, password string) {
	t.Helper()
	c := cmd(wharfBin, append([]string{"user", "add", name, "--password-stdin"}, srv.storeArgs...)...)
	c.env = srv.env
	c.stdin = strings.NewReader(password + "\n")
	c.mustRun(t)
}
