// Command bench measures wharf side by side with the reference registry
// (CNCF distribution v3) on this machine: real processes on loopback, the
// two servers measured alternately with repetitions, and the machine's
// physical limits measured in the same run. See bench/README.md.
//
//	go run ./bench            # full run; writes bench/results/latest.{md,json}
//	go run ./bench --quick    # small sizes (CI); writes bench/results/quick.{md,json}
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wharf/wharf/bench/reference"
)

type options struct {
	quick    bool
	out      string
	name     string
	reps     int
	only     string
	workDir  string
	keep     bool
	cacheDir string
	refBin   string
	refCache string
	profile  string
	wrk      string
	strict   bool

	quietWait  time.Duration
	quietCores float64
	retries    int
	wharfRev   string
	wharfBin   string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "small sizes and short windows (about a minute and a half); what CI runs")
	fs.StringVar(&o.out, "out", "bench/results", "directory for the markdown and JSON results (and profiles/)")
	fs.StringVar(&o.name, "name", "", `base name of the result files (default "latest", or "quick" with --quick)`)
	fs.IntVar(&o.reps, "reps", 0, "repetitions per scenario and server (default 3)")
	fs.StringVar(&o.only, "only", "", "comma-separated scenario ids to run (push-mono, push-chunked, pull, pull-concurrent, manifest, small-images, tags, catalog, memory, client, gc; mirror-manifest, mirror-cold, mirror-memory, or mirror for all three; shared-push-mono, shared-push-chunked, shared-pull, shared-manifest, shared-catalog, shared-memory, or shared for all six)")
	fs.StringVar(&o.workDir, "work-dir", os.TempDir(), "parent of the temporary data directories (both servers' data live on this filesystem)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data directories and server logs")
	fs.StringVar(&o.cacheDir, "cache-dir", defaultCacheDir(), "where the reference registry is installed (go install) when missing")
	fs.StringVar(&o.refBin, "ref-bin", "", "use this reference registry binary instead of the cached install")
	fs.StringVar(&o.refCache, "ref-cache", "inmemory", `the reference's blob-descriptor cache: "inmemory" (its example config) or "none"`)
	fs.StringVar(&o.profile, "profile", "", `profile wharf (pprof CPU and allocations) after a scenario: "miss" (where a target is missed), "all" or "off" (default "miss", "off" with --quick)`)
	fs.StringVar(&o.wrk, "wrk", "auto", `wrk cross-check of the manifest GET rate: "auto" (when wrk is on PATH), "off", or the path of wrk`)
	fs.DurationVar(&o.quietWait, "quiet-wait", -1, "before each measurement, wait up to this long for other processes to go quiet (0: never wait; default 60s, 10s with --quick)")
	fs.IntVar(&o.retries, "retries", -1, "measure a repetition again, up to this many times, when other processes were busy during it (default 2, 1 with --quick)")
	fs.Float64Var(&o.quietCores, "quiet-cores", 0.25, "\"quiet\": other processes use less than this many cores")
	fs.StringVar(&o.wharfRev, "wharf-rev", "", "measure wharf as of this git revision (git archive, then go build) instead of the work tree")
	fs.StringVar(&o.wharfBin, "wharf-bin", "", "measure this prebuilt wharf binary instead of building one")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a target is missed (errors always exit 1)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.name == "" {
		o.name = map[bool]string{true: "quick", false: "latest"}[o.quick]
	}
	if o.quietWait < 0 {
		o.quietWait = map[bool]time.Duration{true: 10 * time.Second, false: 60 * time.Second}[o.quick]
	}
	if o.retries < 0 {
		o.retries = map[bool]int{true: 1, false: 2}[o.quick]
	}
	if o.profile == "" {
		o.profile = map[bool]string{true: "off", false: "miss"}[o.quick]
	}
	switch o.profile {
	case "miss", "all", "off":
	default:
		return o, fmt.Errorf("--profile %q: want miss, all or off", o.profile)
	}
	switch o.refCache {
	case "inmemory", "none":
	default:
		return o, fmt.Errorf("--ref-cache %q: want inmemory or none", o.refCache)
	}
	return o, nil
}

// defaultCacheDir is where the reference registry is installed.
func defaultCacheDir() string { return reference.DefaultCacheDir() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == readmeCmd {
		if err := runReadme(); err != nil {
			fmt.Fprintln(os.Stderr, "bench readme:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == nullRegistryCmd {
		if err := runNullRegistry(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "null-registry:", err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	missed, err := run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if opts.strict && missed > 0 {
		os.Exit(1)
	}
}

// run does one whole benchmark and returns how many targets were missed.
func run(ctx context.Context, opts options) (int, error) {
	h := &harness{opts: opts, plan: fullPlan(), start: time.Now()}
	if opts.quick {
		h.plan = quickPlan()
	}
	if opts.reps > 0 {
		h.plan.Reps = opts.reps
	}
	root, err := moduleRoot()
	if err != nil {
		return 0, err
	}
	if h.outDir, err = filepath.Abs(opts.out); err != nil {
		return 0, err
	}
	if h.work, err = os.MkdirTemp(opts.workDir, "wharf-bench-*"); err != nil {
		return 0, err
	}
	if opts.keep {
		h.progress("keeping data and logs in %s", h.work)
	} else {
		defer os.RemoveAll(h.work)
	}

	wharfBin, wharfDesc := opts.wharfBin, "prebuilt "+opts.wharfBin
	if wharfBin == "" {
		h.progress("building wharf")
		if wharfBin, err = buildWharf(ctx, root, opts.wharfRev, filepath.Join(h.work, "bin")); err != nil {
			return 0, err
		}
		wharfDesc = gitDescribe(root, opts.wharfRev)
	}
	refBin, err := ensureReference(ctx, opts.cacheDir, opts.refBin, h.progress)
	if err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	h.fleet = &fleet{wharfBin: wharfBin, refBin: refBin, selfBin: self, work: h.work, refCache: opts.refCache,
		// Older builds (--wharf-rev) have no --auth and always run open.
		authNone: supportsFlag(wharfBin, "--auth")}
	if opts.profile != "off" {
		if h.fleet.debug = supportsFlag(wharfBin, "--debug-addr"); !h.fleet.debug {
			h.progress("this wharf has no --debug-addr: profiles will be skipped")
		}
	}
	switch opts.wrk {
	case "off":
	case "auto":
		h.wrk, _ = exec.LookPath("wrk")
	default:
		h.wrk = opts.wrk
	}
	refVersion, _ := exec.Command(refBin, "--version").Output()
	if f := strings.Fields(string(refVersion)); len(f) > 1 {
		refVersion = []byte(strings.Join(f[1:], " ")) // drop the program path
	}
	pattern() // built before any clock starts

	h.res = &Results{
		Mode:      h.plan.Mode,
		Command:   "go run ./bench " + strings.Join(os.Args[1:], " "),
		Started:   h.start.UTC().Format(time.RFC3339),
		Machine:   describeMachine(h.work),
		Wharf:     wharfDesc,
		Reference: strings.TrimSpace(string(refVersion)),
		Plan:      h.plan,
		Settings:  h.settings(),
	}

	if err := h.measureLimits(ctx); err != nil {
		return 0, err
	}
	for _, sc := range h.scenarios() {
		if !h.selected(sc.ID) {
			continue
		}
		if err := h.runScenario(ctx, sc); err != nil {
			return 0, err
		}
	}
	h.res.Seconds = time.Since(h.start).Seconds()
	if err := h.res.write(h.outDir, opts.name); err != nil {
		return 0, err
	}
	fmt.Print(h.res.markdown())
	h.progress("wrote %s.md and %s.json in %s", opts.name, opts.name, h.outDir)
	if len(h.res.Errors) > 0 {
		// A scenario that could not run (a server or a store missing, a
		// request failing) fails the run, one line each, so that CI's quick
		// run cannot pass with a section silently empty.
		return 0, fmt.Errorf("%d error(s):\n  %s", len(h.res.Errors), strings.Join(h.res.Errors, "\n  "))
	}
	return len(h.res.missed()), nil
}

func (h *harness) selected(id string) bool {
	if h.opts.only == "" {
		return true
	}
	for _, s := range strings.Split(h.opts.only, ",") {
		s = strings.TrimSpace(s)
		if s == id || s == "memory" && strings.HasPrefix(id, "memory-") || s == "shared" && strings.HasPrefix(id, "shared-") ||
			s == "mirror" && strings.HasPrefix(id, "mirror-") {
			return true
		}
	}
	return false
}

// settings describes, for the report, what each server ran with.
func (h *harness) settings() settings {
	cache := "no blob-descriptor cache"
	if h.opts.refCache == "inmemory" {
		cache = "`storage.cache.blobdescriptor: inmemory` (as in its example configuration; wharf answers the same questions from SQLite)"
	}
	authFlag, auth := "", "no auth (this build has no --auth flag)"
	if h.fleet.authNone {
		authFlag, auth = " --auth=none", "no auth (`--auth=none`: an open registry, like the reference; wharf's default is token auth)"
	}
	dbg := ""
	if h.fleet.debug {
		dbg = " `--debug-addr 127.0.0.1:PORT` (pprof listener, idle unless profiling);"
	}
	return settings{
		Wharf: "`wharf serve --addr 127.0.0.1:PORT --data-dir DIR --log-level info --log-format text" + authFlag + "`;" + dbg +
			" " + auth + "; embedded defaults otherwise: filesystem blobs and SQLite under DIR, fsync before a blob is visible (uploads flushed as they arrive), deletes always allowed," +
			" no request limit, abandoned uploads purged after 24h, access log (one line per request) to a file, buffered and written every 100 ms;" +
			" its own caches: manifests by digest (16 MiB) and pull-path lookups (tag → digest, blob sizes) memoized until the next commit to the database, checked on every request against SQLite's WAL index.",
		Reference: "`registry serve config.yml` (distribution " + refVersion + "): filesystem storage under DIR (fsyncs on commit), `delete.enabled: true`, no auth, no redis, " +
			cache + ", upload purging 24h/24h, `redirect.disable: true`, `catalog.maxentries: 1000000` (so the whole catalog can be asked for in one page, as from wharf)," +
			" log level info with access log to a file, `OTEL_TRACES_EXPORTER=none` (it would otherwise export traces to localhost:4318; it still creates spans).",
		Null: "this program's `null-registry` sub-command: a bare `net/http` server that serves blob bytes and the manifest from memory (1 MiB writes), no logging;" +
			" in the pull and manifest scenarios it reads and drops upload bodies, in the push scenarios it is the push ceiling:" +
			" it hashes each body (sha256) while writing it, through wharf's own copy loop (registry.HashCopy) and blobstore/fs upload writer (the same read-ahead, writeback, background fsyncs every 32 MiB, final fsync, rename)," +
			" with no metadata database and no access log.",
		Shared: "each scenario starts its own PostgreSQL 15 cluster (Debian's, `initdb` + `pg_ctl`, durable: fsync, synchronous commit and full-page writes on, as in production) " +
			"and versitygw (an S3 gateway over a directory on the data filesystem, `versitygw posix`), with one bucket per server. " +
			"**wharf**: as above plus `--database-url postgres://…/wharf --storage-url s3://wharf?endpoint=…&path_style=true` (credentials in `AWS_*`), " +
			"S3 parts of 16 MiB (its default); **reference**: as above but with its `s3` driver on the same gateway " +
			"(`regionendpoint`, `forcepathstyle: true`, `secure: false`, `v4auth: true`, its own bucket, `chunksize` 16 MiB like wharf's parts, " +
			"`redirect.disable: true` so that bytes go through it as through wharf). **wharf-sqlite**, in the manifest scenario only: wharf on its embedded stores, " +
			"the same-run yardstick for wharf on PostgreSQL. **Ceiling** of the blob rows: the same versitygw driven straight by minio-go " +
			"(wharf's S3 client, with its driver's options), taking its turn in the rotation: one PutObject of the whole body signed with its sha256 " +
			"(monolithic push, as wharf's driver streams a blob of known digest), one multipart upload in 16 MiB parts sent in order " +
			"(chunked push), one GetObject read in 1 MiB reads (GET). The stores' CPU (gateway, postmaster and its backends) counts as the server's, not as background load.",
		Client: "this program: Go `net/http` client, HTTP/1.1 keep-alive, one connection per concurrent client, 256 KiB socket buffers for blobs," +
			" 1 MiB reads; bodies come from a 64 MiB in-memory pattern (no generation cost while timing); digests are computed before the clock starts." +
			" Every measurement starts after `sync` so that no server pays for another's writeback.",
	}
}

// moduleRoot is the directory of the main module (where go.mod is).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run bench from inside the wharf module (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}
