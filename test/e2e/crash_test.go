//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// crashPurgeAge is the janitor's age in the crash test: short, so that the
// test can see the upload area emptied, and long enough that no push under
// way loses its session to it.
const crashPurgeAge = 5 * time.Second

// crashingWharf is `wharf serve` on one data directory, killed with
// SIGKILL and started again on it, generation after generation.
type crashingWharf struct {
	t       *testing.T
	addr    string
	dataDir string
	logDir  string

	mu  sync.Mutex
	gen int           // bumped before each kill
	up  chan struct{} // closed once generation gen answers /readyz
	cur *wharfServer
}

func newCrashingWharf(t *testing.T) *crashingWharf {
	t.Helper()
	c := &crashingWharf{t: t, addr: freeLoopbackAddr(t), dataDir: t.TempDir(), logDir: t.TempDir(), up: make(chan struct{})}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	close(c.up)
	t.Cleanup(func() { c.current().stop(t) })
	return c
}

func (c *crashingWharf) current() *wharfServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// start runs a new process on the data directory and waits until it is
// ready.
func (c *crashingWharf) start() error {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	s := &wharfServer{
		Addr: c.addr, URL: "http://" + c.addr, DataDir: c.dataDir,
		logPath: filepath.Join(c.logDir, fmt.Sprintf("wharf-%d.log", gen)),
		exited:  make(chan struct{}),
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	s.cmd = exec.Command(wharfBin, "serve", "--addr", c.addr, "--data-dir", c.dataDir, "--auth=none",
		"--upload-purge-after", crashPurgeAge.String())
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.failed = true
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("wharf generation %d not ready: %v\n--- log ---\n%s", gen, err, s.logTail())
	}
	c.mu.Lock()
	c.cur = s
	c.mu.Unlock()
	return nil
}

// crash kills the process with SIGKILL (no shutdown of any kind) and
// starts a new one on the same data directory.
func (c *crashingWharf) crash() error {
	c.mu.Lock()
	c.gen++
	c.up = make(chan struct{})
	up, s := c.up, c.cur
	c.mu.Unlock()
	_ = s.cmd.Process.Kill()
	<-s.exited
	err := c.start()
	close(up)
	return err
}

// generation returns the current generation.
func (c *crashingWharf) generation() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// crashedSince reports whether a crash came after generation gen, first
// waiting for the server to be back up.
func (c *crashingWharf) crashedSince(ctx context.Context, gen int) bool {
	c.mu.Lock()
	now, up := c.gen, c.up
	c.mu.Unlock()
	if now == gen {
		return false
	}
	select {
	case <-up:
	case <-ctx.Done():
	}
	return true
}

// crasher is what the pushes of a crash test run against: something that
// crashes, and counts its crashes so that a failed request can tell
// whether a crash explains it.
type crasher interface {
	// generation is the number of crashes so far.
	generation() int
	// crashedSince reports whether a crash came after generation gen,
	// first waiting for the service to be back.
	crashedSince(ctx context.Context, gen int) bool
}

// crashPush is one image push: a config and a layer, then a manifest.
type crashPush struct {
	repo, tag       string
	config, layer   []byte
	manifest        []byte
	how             string                 // how the layer goes up: post, put or chunked
	acked           bool                   // the manifest PUT was answered 201
	ackedBlobs      map[digest.Digest]bool // blobs answered 201, in any attempt
	attempts, resum int                    // attempts, and final PUTs retried on their session
}

// newCrashPush is push i, with a layer of layerSize random bytes.
func newCrashPush(i int, rng *rand.Rand, layerSize int) *crashPush {
	layer := make([]byte, layerSize)
	for j := range layer {
		layer[j] = byte(rng.Uint32())
	}
	p := &crashPush{repo: fmt.Sprintf("crash/app%d", i%10), tag: fmt.Sprintf("v%d", i), layer: layer,
		how: []string{"post", "put", "chunked"}[i%3], ackedBlobs: map[digest.Digest]bool{}}
	p.config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"comment":"push %d"}`, i)
	p.manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s"}]}`,
		len(p.config), digest.FromBytes(p.config), len(layer), digest.FromBytes(layer))
	return p
}

// crashClient sends requests and counts the answered ones, which is what
// the test's random crash moments are measured in.
type crashClient struct {
	base     string
	http     *http.Client
	answered atomic.Int64
}

// errCrashed marks a step that failed because the server went away.
var errCrashed = errors.New("connection to wharf failed")

func (c *crashClient) do(ctx context.Context, method, url, contentType string, body []byte, header ...string) (*http.Response, []byte, error) {
	if !strings.HasPrefix(url, "http") {
		url = c.base + url
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w: %v", method, url, errCrashed, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get(frontNoAnswer) != "" {
		// A front stood in for a replica that died under the request.
		return nil, nil, fmt.Errorf("%s %s: %w: the front got no answer", method, url, errCrashed)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w: %v", method, url, errCrashed, err)
	}
	c.answered.Add(1)
	return resp, b, nil
}

// errServerFault marks a 5xx answer: a crash explains requests that got no
// answer, never an answer that is an internal error.
var errServerFault = errors.New("wharf answered a server error")

func want(resp *http.Response, b []byte, status int, what string) error {
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%s: %w: %d %s", what, errServerFault, resp.StatusCode, b)
	}
	if resp.StatusCode != status {
		return fmt.Errorf("%s: %d %s, want %d", what, resp.StatusCode, b, status)
	}
	return nil
}

// pushBlob uploads content to repo in one of three ways: one POST with
// the digest, a POST then a PUT with the body, or PATCHes then a PUT.
// A final PUT that got no answer is sent again on the same session once
// the server is back, as a client would: the blob may be committed and
// its session not yet ended.
func (p *crashPush) pushBlob(ctx context.Context, c *crashClient, w crasher, gen int, content []byte, how string) error {
	d := digest.FromBytes(content)
	if how == "post" {
		resp, b, err := c.do(ctx, "POST", "/v2/"+p.repo+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", content)
		if err != nil {
			return err
		}
		return want(resp, b, http.StatusCreated, "monolithic POST")
	}
	resp, b, err := c.do(ctx, "POST", "/v2/"+p.repo+"/blobs/uploads/", "", nil)
	if err != nil {
		return err
	}
	if err := want(resp, b, http.StatusAccepted, "POST upload"); err != nil {
		return err
	}
	loc := resp.Header.Get("Location")
	last := content
	if how == "chunked" {
		cut := len(content) / 3
		for _, chunk := range [][2]int{{0, cut}, {cut, 2 * cut}} {
			resp, b, err := c.do(ctx, "PATCH", loc, "application/octet-stream", content[chunk[0]:chunk[1]],
				"Content-Range", fmt.Sprintf("%d-%d", chunk[0], chunk[1]-1))
			if err != nil {
				return err
			}
			if err := want(resp, b, http.StatusAccepted, "PATCH"); err != nil {
				return err
			}
			loc = resp.Header.Get("Location")
		}
		last = content[2*cut:]
	}
	put := loc + "&digest=" + d.String()
	if !strings.Contains(loc, "?") {
		put = loc + "?digest=" + d.String()
	}
	for {
		resp, b, err := c.do(ctx, "PUT", put, "application/octet-stream", last)
		if errors.Is(err, errCrashed) && w.crashedSince(ctx, gen) && ctx.Err() == nil {
			p.resum++
			gen = w.generation()
			continue
		}
		if err != nil {
			return err
		}
		return want(resp, b, http.StatusCreated, "final PUT")
	}
}

// attempt pushes the image once; it reports the generation it began in.
func (p *crashPush) attempt(ctx context.Context, c *crashClient, w crasher) (int, error) {
	gen := w.generation()
	p.attempts++
	for _, blob := range []struct {
		content []byte
		how     string
	}{{p.layer, p.how}, {p.config, "post"}} {
		if err := p.pushBlob(ctx, c, w, gen, blob.content, blob.how); err != nil {
			return gen, err
		}
		p.ackedBlobs[digest.FromBytes(blob.content)] = true
	}
	resp, b, err := c.do(ctx, "PUT", "/v2/"+p.repo+"/manifests/"+p.tag, "application/vnd.oci.image.manifest.v1+json", p.manifest)
	if err != nil {
		return gen, err
	}
	if err := want(resp, b, http.StatusCreated, "manifest PUT"); err != nil {
		return gen, err
	}
	p.acked = true
	return gen, nil
}

// run pushes until acknowledged. A failed attempt is tried again only
// when a crash explains it (a session lost with the process, a request
// that got no answer); any other failure is the registry's fault.
func (p *crashPush) run(ctx context.Context, c *crashClient, w crasher) error {
	for ctx.Err() == nil {
		gen, err := p.attempt(ctx, c, w)
		if err == nil {
			return nil
		}
		if errors.Is(err, errServerFault) || !w.crashedSince(ctx, gen) {
			return err
		}
	}
	return ctx.Err()
}

// runCrashPushes runs every push at once against w and crashes it at
// random moments, counted in answered requests (after gap plus up to
// spread more), until the pushes end or maxCrashes crashes. A push that
// failed fails the test. It returns the number of crashes.
func runCrashPushes(t *testing.T, ctx context.Context, c *crashClient, w crasher, ps []*crashPush, rng *rand.Rand,
	maxCrashes int, gap, spread int64, crash func(*rand.Rand) error) int {
	t.Helper()
	done := make(chan struct{})
	crashes := 0
	crashErr := make(chan error, 1)
	go func() {
		defer close(crashErr)
		for crashes < maxCrashes {
			next := c.answered.Load() + gap + rng.Int64N(spread)
			for c.answered.Load() < next {
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
			}
			crashes++
			if err := crash(rng); err != nil {
				crashErr <- err
				return
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.run(ctx, c, w) })
	}
	wg.Wait()
	close(done)
	if err := <-crashErr; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("push %d (%s, layer %s, %d bytes): %v", i, ps[i].repo, ps[i].how, len(ps[i].layer), err)
		}
	}
	return crashes
}

// mismatchedBlobFiles hashes every committed blob file under root and
// returns how many there are and the paths whose bytes do not match.
func mismatchedBlobFiles(t *testing.T, root string) (files int, bad []string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		files++
		if hex.EncodeToString(h.Sum(nil)) != filepath.Base(path) {
			bad = append(bad, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, bad
}

func uploadArea(t *testing.T, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "blobs", "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCrash_KilledDuringPushes kills `wharf serve` with SIGKILL at random
// moments while 200 pushes run at once (layers monolithic or chunked,
// then configs and manifests), and starts it again on the same data each
// time. Every push answered 201 must pull back whole, nothing half-written
// may be served or stored as a blob, and once the janitor's age has passed
// the upload area must be empty.
func TestCrash_KilledDuringPushes(t *testing.T) {
	const pushes, maxCrashes = 200, 8
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	w := newCrashingWharf(t)
	c := &crashClient{base: "http://" + w.addr, http: &http.Client{Timeout: 30 * time.Second}}
	ps := make([]*crashPush, pushes)
	for i := range ps {
		ps[i] = newCrashPush(i, rng, 1024+rng.IntN(63<<10))
	}

	crashes := runCrashPushes(t, ctx, c, w, ps, rng, maxCrashes, 40, 120, func(*rand.Rand) error { return w.crash() })

	// One last crash, so that what is checked is what a crash left.
	if err := w.crash(); err != nil {
		t.Fatal(err)
	}
	crashes++

	acked, verified, attempts, resumed := 0, 0, 0, 0
	for _, p := range ps {
		attempts += p.attempts
		resumed += p.resum
		if !p.acked {
			continue
		}
		acked++
		ok := true
		resp, b, err := c.do(ctx, "GET", "/v2/"+p.repo+"/manifests/"+p.tag, "", nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
		if err != nil || resp.StatusCode != http.StatusOK || digest.FromBytes(b) != digest.FromBytes(p.manifest) {
			t.Errorf("%s:%s acked but pulls back as %v %v", p.repo, p.tag, err, resp)
			ok = false
		}
		for _, content := range [][]byte{p.layer, p.config} {
			d := digest.FromBytes(content)
			resp, b, err := c.do(ctx, "GET", "/v2/"+p.repo+"/blobs/"+d.String(), "", nil)
			if err != nil || resp.StatusCode != http.StatusOK || digest.FromBytes(b) != d {
				t.Errorf("%s blob %s acked but pulls back as %v %v", p.repo, d, err, resp)
				ok = false
			}
		}
		if ok {
			verified++
		}
	}
	// Every blob answered 201 is served, whole, and so is whatever else
	// the registry serves.
	served, blobAcks := 0, 0
	for _, p := range ps {
		for _, content := range [][]byte{p.layer, p.config} {
			d := digest.FromBytes(content)
			resp, b, err := c.do(ctx, "GET", "/v2/"+p.repo+"/blobs/"+d.String(), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.ackedBlobs[d] {
				blobAcks++
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s blob %s was answered 201 but is %d after the crash", p.repo, d, resp.StatusCode)
				}
			}
			if resp.StatusCode == http.StatusOK {
				served++
				if digest.FromBytes(b) != d {
					t.Errorf("%s serves %d bytes as %s that hash to %s", p.repo, len(b), d, digest.FromBytes(b))
				}
			}
		}
	}
	files, bad := mismatchedBlobFiles(t, filepath.Join(w.dataDir, "blobs", "blobs"))
	for _, path := range bad {
		t.Errorf("blob file %s does not hash to its name", path)
	}

	orphansAfterCrash := len(uploadArea(t, w.dataDir))
	deadline := time.Now().Add(crashPurgeAge + 20*time.Second)
	left := uploadArea(t, w.dataDir)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond) // the real process's janitor runs on its own clock
		left = uploadArea(t, w.dataDir)
	}
	if len(left) > 0 {
		t.Errorf("%d files left in the upload area after the janitor's age (%s), among them %v", len(left), crashPurgeAge, left[:min(len(left), 5)])
	}
	t.Logf("crash test: %d pushes attempted (%d attempts in all, %d final PUTs retried on their session), %d crashes (SIGKILL), "+
		"%d acked, %d verified after the last crash (%d blob PUTs answered 201, all served); %d blobs served, all whole; %d blob files on disk, %d damaged; "+
		"upload area: %d files right after the last crash, %d orphans after the janitor's age (%s)",
		pushes, attempts, resumed, crashes, acked, verified, blobAcks, served, files, len(bad), orphansAfterCrash, len(left), crashPurgeAge)
	if acked != pushes {
		t.Errorf("%d of %d pushes acknowledged", acked, pushes)
	}
	if verified != acked {
		t.Errorf("%d of %d acknowledged pushes verified", verified, acked)
	}
}
