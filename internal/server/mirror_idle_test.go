package server_test

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/proxy"
	"github.com/wharf/wharf/internal/registrytest"
)

// manualTimer stands in for the mirror's idle timers: each AfterFunc
// gets a timer of its own, so that a watchdog stopped late (a finished
// fetch's, say) cannot disarm the one a test means to fire, and fire
// expires the newest armed one, as its timeout would.
type manualTimer struct {
	mu     sync.Mutex
	timers []*fakeTimer
	starts int // AfterFunc calls, one per fetch
	resets int
}

type fakeTimer struct {
	m     *manualTimer
	f     func()
	armed bool
}

func (m *manualTimer) afterFunc(_ time.Duration, f func()) proxy.Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &fakeTimer{m: m, f: f, armed: true}
	m.timers = append(m.timers, t)
	m.starts++
	return t
}

func (t *fakeTimer) Reset(time.Duration) bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	was := t.armed
	t.armed = true
	t.m.resets++
	return was
}

func (t *fakeTimer) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

// fire runs the function of the newest armed timer, as its expiry would,
// and reports whether there was one.
func (m *manualTimer) fire() bool {
	m.mu.Lock()
	var f func()
	for i := len(m.timers) - 1; i >= 0; i-- {
		if t := m.timers[i]; t.armed {
			f, t.armed = t.f, false
			break
		}
	}
	m.mu.Unlock()
	if f != nil {
		f()
	}
	return f != nil
}

func TestMirror_StalledFetchTimesOutAndTheNextPullRetries(t *testing.T) {
	up := newUpstream(t, "docker.io")
	blob := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{11}).Read(blob)
	dg := pushBlob(t, up.wharf.URL, "library/stall", blob)
	d, hexd := dg.String(), dg.Encoded()
	timer := &manualTimer{}
	mirror := mirrorOf(t, []registrytest.Option{registrytest.WithAfterFunc(timer.afterFunc),
		registrytest.WithConfig(func(c *config.Config) { c.Mirror.IdleTimeout = time.Minute })}, up)

	// The upstream sends half the blob, then nothing. Two clients read
	// that half from the one fetch: then the fetch is waiting on the
	// upstream, with no byte coming.
	up.hold = make(chan struct{})
	unhold := sync.OnceFunc(func() { close(up.hold) })
	t.Cleanup(unhold)
	var bodies []io.ReadCloser
	for range 2 {
		resp, err := http.Get(mirror.URL + "/v2/library/stall/blobs/" + d)
		must(t, err)
		defer resp.Body.Close()
		half := make([]byte, len(blob)/2)
		if _, err := io.ReadFull(resp.Body, half); err != nil || !bytes.Equal(half, blob[:len(half)]) {
			t.Fatalf("before the stall a client read %v, want the first half of the blob", err)
		}
		bodies = append(bodies, resp.Body)
	}
	timer.mu.Lock()
	starts, resets := timer.starts, timer.resets
	timer.mu.Unlock()
	if starts != 1 || resets == 0 {
		t.Errorf("idle timer started %d times and reset %d times; want one fetch's timer, reset as bytes came", starts, resets)
	}
	if !timer.fire() {
		t.Fatal("the idle timer was not armed while the upstream stalled")
	}
	for i, body := range bodies {
		if n, err := io.Copy(io.Discard, body); err == nil {
			t.Errorf("client %d: the stalled fetch ended in a clean EOF after %d more bytes, want an error", i, n)
		}
	}
	_ = filepath.WalkDir(mirror.DataDir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && (strings.Contains(path, hexd) || strings.Contains(path, "mirror-spool")) {
			t.Errorf("after a timed-out fetch, %s is on disk", path)
		}
		return nil
	})

	// The upstream answers again: the next pull fetches afresh.
	unhold()
	resp, err := http.Get(mirror.URL + "/v2/library/stall/blobs/" + d)
	must(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("the pull after the timeout = %d bytes, %v; want the blob", len(got), err)
	}
	if n := up.blobGets.Load(); n != 2 {
		t.Errorf("upstream blob GETs = %d, want 2 (the stalled one and the retry)", n)
	}
}

func TestMirror_StalledManifestFetchTimesOutAndServesStale(t *testing.T) {
	up := newUpstream(t, "docker.io")
	img, err := random.Image(1024, 1)
	must(t, err)
	want := pushTo(t, up.wharf.Server, "library/app:latest", img)

	// A front that, once stalled, takes manifest requests (HEAD and GET)
	// and answers nothing until the mirror gives up on them.
	var stall atomic.Bool
	asked := make(chan string, 8)
	released := make(chan struct{})
	inner := up.wharf.Server.Config.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall.Load() && strings.Contains(r.URL.Path, "/manifests/") {
			asked <- r.Method
			select {
			case <-r.Context().Done():
			case <-released:
			}
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	// Cleanups run last first: a test that failed with a request still
	// held lets it go before front.Close waits for it.
	t.Cleanup(func() { close(released) })
	slow := &upstream{wharf: up.wharf, front: front, host: up.host}
	timer := &manualTimer{}
	clock := clocktest.New()
	mirror := mirrorOf(t, []registrytest.Option{registrytest.WithAfterFunc(timer.afterFunc), registrytest.WithClock(clock.Now),
		registrytest.WithConfig(func(c *config.Config) { c.Mirror.IdleTimeout = time.Minute })}, slow)
	if got, err := pullAll(t, mirror.Server, "library/app:latest"); err != nil || got != want {
		t.Fatalf("first pull = %s, %v; want %s", got, err, want)
	}

	stall.Store(true)
	clock.Advance(config.Default().Mirror.TagTTL + time.Second)
	// get asks the mirror for a manifest while the upstream stalls, and
	// lets the idle timeout pass once the upstream has the request.
	get := func(tag string) (*http.Response, []byte) {
		t.Helper()
		type answer struct {
			resp *http.Response
			body []byte
			err  error
		}
		done := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodGet, mirror.URL+"/v2/library/"+tag+"/manifests/latest", nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- answer{err: err}
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- answer{resp, body, err}
		}()
		if m := <-asked; m != http.MethodHead {
			t.Errorf("a tag past its TTL was first asked upstream with %s, want HEAD", m)
		}
		if !timer.fire() {
			t.Fatal("no idle timer was armed while the upstream held the manifest request")
		}
		a := <-done
		must(t, a.err)
		return a.resp, a.body
	}

	resp, body := get("app")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != want.String() {
		t.Errorf("a cached tag whose upstream stalled = %d %s %s; want the cached %s served stale", resp.StatusCode,
			resp.Header.Get("Docker-Content-Digest"), body, want)
	}
	resp, body = get("other")
	if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(body, []byte("sent nothing for 1m0s")) {
		t.Errorf("an uncached tag whose upstream stalled = %d %s; want 502 saying the upstream sent nothing", resp.StatusCode, body)
	}
}
