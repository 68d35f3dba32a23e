package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wharf/wharf/internal/client/store"
)

// holdLayersForConfigGET holds every blob GET but the config's until the
// config has been asked for, failing them if it is not within a bound.
type holdLayersForConfigGET struct {
	config string
	asked  chan struct{}
	once   sync.Once
	next   http.RoundTripper
}

func (h *holdLayersForConfigGET) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/blobs/") {
		return h.next.RoundTrip(req)
	}
	if strings.HasSuffix(req.URL.Path, "/blobs/"+h.config) {
		h.once.Do(func() { close(h.asked) })
		return h.next.RoundTrip(req)
	}
	select {
	case <-h.asked:
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("%s: the config was not fetched while the layers were", req.URL.Path)
	}
	return h.next.RoundTrip(req)
}

// TestPull_FetchesConfigBesideLayers: the config's round trip overlaps the
// layers' instead of following the last of them.
func TestPull_FetchesConfigBesideLayers(t *testing.T) {
	ctx := context.Background()
	host, img := pushedImage(t, "team/pullcfg:v1", "pullconfig", 3)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	r := testRemote(t)
	r.Transport = &holdLayersForConfigGET{config: cfg.String(), asked: make(chan struct{}), next: http.DefaultTransport}
	dst := newStore(t)
	if err := Pull(ctx, dst, host+"/team/pullcfg:v1", PullOptions{Remote: r}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !dst.HasBlob(cfg) {
		t.Error("config not stored")
	}
}

// blobGate counts blob GETs in flight (from the request until its body is
// closed) and holds each until as many as the bound are in flight, or all
// have started, so that a pull below the bound cannot pass.
type blobGate struct {
	bound, total int
	mu           sync.Mutex
	cond         *sync.Cond
	inflight     int
	started      int
	peak         int
	next         http.RoundTripper
}

func (g *blobGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/blobs/") {
		return g.next.RoundTrip(req)
	}
	g.mu.Lock()
	g.inflight++
	g.started++
	g.peak = max(g.peak, g.inflight)
	g.cond.Broadcast()
	deadline := time.AfterFunc(10*time.Second, func() { g.mu.Lock(); g.total = 0; g.cond.Broadcast(); g.mu.Unlock() })
	for g.inflight < g.bound && g.started < g.total {
		g.cond.Wait()
	}
	timedOut := g.total == 0
	g.mu.Unlock()
	deadline.Stop()
	if timedOut {
		return nil, fmt.Errorf("%s: fewer than %d blobs moved at once", req.URL.Path, g.bound)
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		g.done()
		return nil, err
	}
	resp.Body = &doneOnClose{ReadCloser: resp.Body, done: g.done}
	return resp, nil
}

func (g *blobGate) done() {
	g.mu.Lock()
	g.inflight--
	g.mu.Unlock()
}

type doneOnClose struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (d *doneOnClose) Close() error {
	err := d.ReadCloser.Close()
	d.once.Do(d.done)
	return err
}

// TestPull_MovesFiveBlobsAtOnce: a pull moves docker's five blobs at once
// (the config among them) and still prints docker's lines in manifest
// order. The gate fails a pull that moves fewer; one that moves more fails
// only when a sixth request arrives before the first five finish, which
// nothing here can force without waiting for time to pass.
func TestPull_MovesFiveBlobsAtOnce(t *testing.T) {
	ctx := context.Background()
	const layers = 8
	host, img := pushedImage(t, "team/five:v1", "fiveatonce", layers)
	gate := &blobGate{bound: 5, total: layers + 1, next: http.DefaultTransport}
	gate.cond = sync.NewCond(&gate.mu)
	r := testRemote(t)
	r.Transport = gate
	var out strings.Builder
	if err := Pull(ctx, newStore(t), host+"/team/five:v1", PullOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if gate.peak != 5 {
		t.Errorf("%d blobs moved at once, want 5", gate.peak)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range ls {
		d, _ := l.Digest()
		want = append(want, shortHash(d)+": Download complete", shortHash(d)+": Pull complete")
	}
	var got []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasSuffix(line, "complete") {
			got = append(got, line)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// indexWrites counts the store calls that rewrite index.json (each an
// fsync and a rename on the pull's critical path).
type indexWrites struct {
	*store.Store
	n atomic.Int32
}

func (s *indexWrites) WriteImage(ctx context.Context, img v1.Image) error {
	s.n.Add(1)
	return s.Store.WriteImage(ctx, img)
}

func (s *indexWrites) WritePulled(ctx context.Context, img v1.Image, p store.Pulled) error {
	s.n.Add(1)
	return s.Store.WritePulled(ctx, img, p)
}

func (s *indexWrites) Tag(ctx context.Context, ref reference.Named, d v1.Hash) error {
	s.n.Add(1)
	return s.Store.Tag(ctx, ref, d)
}

func (s *indexWrites) SetRepoDigest(ctx context.Context, repo reference.Named, d v1.Hash) error {
	s.n.Add(1)
	return s.Store.SetRepoDigest(ctx, repo, d)
}

// TestPull_WritesIndexOnce: a pull stores the image, tags it and records
// its repository digest in one write of index.json, whether it downloads
// the image or finds it up to date, and the store then shows all three.
func TestPull_WritesIndexOnce(t *testing.T) {
	ctx := context.Background()
	host, img := pushedImage(t, "team/once:v1", "indexonce", 2)
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	st := &indexWrites{Store: newStore(t)}
	for _, pull := range []string{"first", "up to date"} {
		st.n.Store(0)
		if err := Pull(ctx, st, host+"/team/once:v1", PullOptions{Remote: testRemote(t)}, io.Discard); err != nil {
			t.Fatal(err)
		}
		if n := st.n.Load(); n != 1 {
			t.Errorf("%s pull: %d writes of index.json, want 1", pull, n)
		}
	}
	entries, err := st.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tagged bool
	for _, e := range entries {
		if e.Ref != nil && e.Ref.String() == host+"/team/once:v1" && e.Manifest == want {
			tagged = true
			if e.RepoDigest != host+"/team/once@"+want.String() {
				t.Errorf("repository digest %q, want %s/team/once@%s", e.RepoDigest, host, want)
			}
		}
	}
	if !tagged {
		t.Errorf("no tag %s/team/once:v1 → %s in %+v", host, want, entries)
	}
}
