package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharf/wharf/bench/reference"
	"github.com/wharf/wharf/internal/throwaway"
)

// The reference registry: CNCF distribution, installed with go install.
const (
	refModule  = reference.Module
	refVersion = reference.Version
)

// Target names, as they appear in the report.
const (
	nameWharf = "wharf"
	nameRef   = "reference"
	nameNull  = "net/http"
	// In the shared-storage section: wharf on its embedded stores, whose
	// manifest rate the shared wharf is compared with, and the S3 gateway
	// itself, driven straight by an S3 client (the section's ceiling).
	nameWharfSQLite = "wharf-sqlite"
	nameS3          = "versitygw"
)

// fleet knows how to start each kind of server.
type fleet struct {
	wharfBin, refBin, selfBin string
	work                      string // parent of every data directory
	refCache                  string // "inmemory" or "none"
	debug                     bool   // start wharf with a pprof listener
	// authNone: this wharf has --auth and defaults to token auth, so it is
	// started with --auth=none to match the reference, which runs open.
	authNone bool
}

// server is one running registry process.
type server struct {
	name      string
	base      string // http://host:port
	debugAddr string // wharf's pprof listener, if any
	dataDir   string
	cmd       *exec.Cmd // nil for a process the harness did not start here
	extPid    int       // that process's id
	exited    chan struct{}
	logPath   string
	// stores are the root pids of the external stores the server uses
	// (the shared-storage section's PostgreSQL and S3 gateway): their CPU
	// is the server's work, not other processes' noise.
	stores []int
}

// nullOpts configure the null registry for one scenario.
type nullOpts struct {
	blobSize int64
	manifest []byte
	store    bool // hash and store uploads in its data directory
	mirror   bool // serve blob GETs from the scenario's upstream (MirrorOf), spooled
}

// start launches the named server with a fresh data directory under dir;
// with st, wharf and the reference keep their data in st's PostgreSQL and
// S3 gateway instead. With mirrorOf, wharf is a pull-through cache of
// that server, whose CPU then counts as wharf's (it is wharf's upstream,
// not other processes' noise). wharfArgs are added to wharf's command line.
func (f *fleet) start(ctx context.Context, name, dir string, null nullOpts, st *sharedStores, mirrorOf *server, wharfArgs ...string) (*server, error) {
	if name == nameS3 {
		if st == nil {
			return nil, errors.New("the S3 gateway runs only in the shared-storage section")
		}
		// The section's gateway itself: driven straight by an S3 client, it
		// is the ceiling of the S3 rows. The section stops it.
		return &server{name: name, base: st.s3.Endpoint, extPid: st.s3.Pid()}, nil
	}
	addr, err := throwaway.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, base: "http://" + addr, dataDir: filepath.Join(dir, strings.ReplaceAll(name, "/", "-"))}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return nil, err
	}
	s.logPath = s.dataDir + ".log"
	env := cleanEnv()
	var args []string
	ready := s.base + "/readyz"
	switch name {
	case nameWharf:
		args = []string{f.wharfBin, "serve", "--addr", addr, "--data-dir", s.dataDir,
			"--log-level", "info", "--log-format", "text"}
		if f.authNone {
			args = append(args, "--auth=none")
		}
		if mirrorOf != nil {
			conf, err := writeMirrorConfig(s.dataDir, mirrorOf.base)
			if err != nil {
				return nil, err
			}
			args = append(args, "--config", conf)
			s.stores = append(s.stores, mirrorOf.pid())
		}
		if st != nil {
			args = append(args, "--database-url", st.wharfDB, "--storage-url", st.s3.URL(bucketWharf, ""))
			env = append(env, st.s3.Env()...)
			s.stores = st.pids()
		}
		if f.debug {
			if s.debugAddr, err = throwaway.FreeLoopbackAddr(); err != nil {
				return nil, err
			}
			args = append(args, "--debug-addr", s.debugAddr)
		}
		args = append(args, wharfArgs...)
	case nameWharfSQLite:
		args = []string{f.wharfBin, "serve", "--addr", addr, "--data-dir", s.dataDir,
			"--log-level", "info", "--log-format", "text"}
		if f.authNone {
			args = append(args, "--auth=none")
		}
	case nameRef:
		cfg := filepath.Join(dir, "reference.yml")
		driver := fsDriver(filepath.Join(s.dataDir, "storage"))
		if st != nil {
			driver = st.referenceDriver()
			s.stores = []int{st.s3.Pid()}
		}
		if err := os.WriteFile(cfg, []byte(referenceConfig(addr, driver, f.refCache)), 0o644); err != nil {
			return nil, err
		}
		args = []string{f.refBin, "serve", cfg}
		// The reference exports OpenTelemetry traces to localhost:4318
		// unless told not to; wharf has no tracing to match.
		env = append(env, "OTEL_TRACES_EXPORTER=none")
		ready = s.base + "/v2/"
	case nameNull:
		args = []string{f.selfBin, nullRegistryCmd, "--addr", addr, "--blob-size", strconv.FormatInt(null.blobSize, 10)}
		if null.manifest != nil {
			mf := filepath.Join(s.dataDir, "manifest.json")
			if err := os.WriteFile(mf, null.manifest, 0o644); err != nil {
				return nil, err
			}
			args = append(args, "--manifest", mf)
		}
		if null.store {
			args = append(args, "--data-dir", filepath.Join(s.dataDir, "store"))
		}
		if null.mirror {
			if mirrorOf == nil {
				return nil, errors.New("the null mirror needs its upstream")
			}
			args = append(args, "--mirror-of", mirrorOf.base, "--data-dir", filepath.Join(s.dataDir, "spool"))
			s.stores = append(s.stores, mirrorOf.pid())
		}
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Dir = dir
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, ready); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// cleanEnv is the harness's environment without settings meant for either
// registry, so that both run on what the harness says and nothing else.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WHARF_") || strings.HasPrefix(kv, "REGISTRY_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (s *server) waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during start-up: %s", s.name, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 60s: %s", s.name, s.logTail())
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	b = bytes.TrimSpace(b)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

func (s *server) pid() int {
	if s.cmd == nil {
		return s.extPid
	}
	return s.cmd.Process.Pid
}

// stop sends SIGTERM and, if the process lingers, SIGKILL. A process the
// harness did not start here is left to whoever did.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// peakRSS is the process's high-water resident set (VmHWM) in bytes.
func (s *server) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

// procCPU is the CPU time (user+system) a process has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on every Linux architecture Go supports
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// machineBusy is the CPU time all processors have spent not idle (user,
// nice, system, irq, softirq, steal) since boot, from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	const clkTck = 100
	return time.Duration(ticks) * time.Second / clkTck
}

// selfCPU is the CPU time the harness itself has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// referenceConfig is the reference registry's configuration, chosen to
// match wharf's: the storage driver's YAML (fsDriver, or the shared-storage
// section's S3 driver), deletes enabled, no auth, no redis, upload purging
// after 24h like wharf's default, no redirects, traces off, and a catalog
// that may answer all repositories in one page as wharf's does. cache is
// "inmemory" (the blob-descriptor cache the reference's example
// configuration ships with) or "none".
func referenceConfig(addr, driver, cache string) string {
	c := ""
	if cache == "inmemory" {
		c = "  cache:\n    blobdescriptor: inmemory\n"
	}
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
%s  delete:
    enabled: true
%s  maintenance:
    uploadpurging:
      enabled: true
      age: 24h
      interval: 24h
      dryrun: false
  redirect:
    disable: true
http:
  addr: %s
  secret: wharf-bench-not-a-secret
catalog:
  maxentries: 1000000
`, driver, c, addr)
}

// fsDriver is the reference's filesystem storage under root (it fsyncs on
// commit).
func fsDriver(root string) string {
	return "  filesystem:\n    rootdirectory: " + root + "\n"
}

// ensureReference returns the reference registry binary: override if
// set, else the one reference.Ensure installs in the cache directory.
func ensureReference(ctx context.Context, cacheDir, override string, progress func(string, ...any)) (string, error) {
	if override != "" {
		return override, nil
	}
	return reference.Ensure(ctx, cacheDir, progress)
}

// buildWharf compiles ./cmd/wharf from the module at root into dir: from
// the work tree, or from the git revision rev when one is given (so that
// a run can measure a commit while the work tree is mid-edit).
func buildWharf(ctx context.Context, root, rev, dir string) (string, error) {
	bin := filepath.Join(dir, "wharf")
	src := root
	if rev != "" {
		src = filepath.Join(dir, "src")
		if err := exportRev(ctx, root, rev, src); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wharf")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wharf: %w\n%s", err, out)
	}
	return bin, nil
}

// exportRev writes the tree of git revision rev into dir (git archive).
func exportRev(ctx context.Context, root, rev, dir string) error {
	cmd := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	tr := tar.NewReader(out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("git archive %s: %w", rev, err)
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = writeFile(p, tr, os.FileMode(hdr.Mode).Perm())
		}
		if err != nil {
			return err
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive %s: %w: %s", rev, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// supportsFlag says whether `bin serve --help` mentions flag.
func supportsFlag(bin, flag string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return bytes.Contains(out, []byte(flag))
}
