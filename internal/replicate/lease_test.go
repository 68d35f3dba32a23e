package replicate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
)

// gate fronts a source registry and holds its manifest reads, while
// closed, until released or abandoned: a copy in progress.
type gate struct {
	*httptest.Server
	closed  atomic.Bool
	held    atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(t *testing.T, target string) *gate {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(u)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the first copy is held: a second one (another worker's,
		// which a failing test starts) goes through.
		if g.closed.Load() && strings.Contains(r.URL.Path, "/manifests/") && g.held.CompareAndSwap(false, true) {
			g.entered <- struct{}{}
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	t.Cleanup(g.open) // first: a failed test leaves no copy held
	return g
}

// open releases the held reads and lets later ones through.
func (g *gate) open() {
	g.closed.Store(false)
	g.once.Do(func() { close(g.release) })
}

// twoWorkers returns two replication workers (two replicas) on one
// database, copying from source, with the default lease on clock, and a
// rule to dest that owes dest a push of team/app:1.
func twoWorkers(t *testing.T, clock *clocktest.Clock, source, dest string) (a, b *replicate.Service, rule int64) {
	t.Helper()
	store, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "wharf.db"), nil, sqldb.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for _, w := range []**replicate.Service{&a, &b} {
		if *w, err = replicate.NewService(store, nil, nil, replicate.Endpoint{URL: source}, replicate.Options{Now: clock.Now, AllowInternal: true}); err != nil {
			t.Fatal(err)
		}
	}
	if rule, err = a.CreateRule(t.Context(), "team", replicate.RuleSpec{URL: dest}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordEvents(t.Context(), []metadata.Event{{Action: metadata.EventPush, Repo: "team/app", Tag: "1"}}); err != nil {
		t.Fatal(err)
	}
	return a, b, rule
}

func dueOn(t *testing.T, w *replicate.Service) int {
	t.Helper()
	n, err := w.ReplicateDue(t.Context())
	if err != nil {
		t.Fatalf("ReplicateDue: %v", err)
	}
	return n
}

// TestWorker_ADeadReplicasTaskIsTakenAfterTheShortLease: a replica killed
// mid-copy holds its claim for one lease (a minute by default, not a
// quarter of an hour), then another replica does the copy.
func TestWorker_ADeadReplicasTaskIsTakenAfterTheShortLease(t *testing.T) {
	clock := clocktest.New()
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	img := push(t, src.Server, "team/app:1")
	front := newGate(t, src.URL)
	a, b, _ := twoWorkers(t, clock, front.URL, dest.URL)

	front.closed.Store(true)
	ctx, kill := context.WithCancel(t.Context())
	died := make(chan int, 1)
	go func() {
		n, _ := a.ReplicateDue(ctx)
		died <- n
	}()
	select {
	case <-front.entered:
	case n := <-died:
		t.Fatalf("a's round ended (%d tasks) before it copied", n)
	}
	kill() // a dies mid-copy, its claim left in the database
	<-died
	front.closed.Store(false)

	if n := dueOn(t, b); n != 0 {
		t.Fatalf("b took %d tasks while a's claim is live, want 0", n)
	}
	clock.Advance(time.Minute - time.Second)
	if n := dueOn(t, b); n != 0 {
		t.Fatalf("b took %d tasks before a's lease lapsed, want 0", n)
	}
	clock.Advance(time.Second)
	if n := dueOn(t, b); n != 1 {
		t.Fatalf("b took %d tasks once a's lease lapsed, want its copy", n)
	}
	wantDigest(t, dest.Server, "team/app:1", img)
}

// TestWorker_ALiveSlowCopyKeepsItsClaim: the heartbeat renews a running
// copy's claim, so that another replica does not take it when the first
// lease ends.
func TestWorker_ALiveSlowCopyKeepsItsClaim(t *testing.T) {
	clock := clocktest.New()
	src, dest := registrytest.NewServer(t), registrytest.NewServer(t)
	img := push(t, src.Server, "team/app:1")
	front := newGate(t, src.URL)
	a, b, id := twoWorkers(t, clock, front.URL, dest.URL)

	front.closed.Store(true)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := a.ReplicateDue(t.Context())
		done <- result{n, err}
	}()
	select {
	case <-front.entered:
	case r := <-done:
		t.Fatalf("a's round ended (%d, %v) before it copied", r.n, r.err)
	}
	start := clock.Now()
	// A beat every 40s; from the second on, the lease the beat before
	// renewed is all that holds the claim (the first ended at +1m).
	for range 4 {
		clock.Advance(40 * time.Second)
		if n := dueOn(t, b); n != 0 {
			t.Fatalf("at +%v b took %d tasks from a live copy, want 0", clock.Now().Sub(start), n)
		}
		if n, err := a.RenewClaims(t.Context()); err != nil || n != 1 {
			t.Fatalf("a's heartbeat renewed %d claims (%v), want its copy's", n, err)
		}
	}
	front.open()
	if r := <-done; r.err != nil || r.n != 1 {
		t.Fatalf("a's round = %d, %v; want its one copy done", r.n, r.err)
	}
	wantDigest(t, dest.Server, "team/app:1", img)
	if r, err := a.Rule(t.Context(), "team", id); err != nil || r.Pending != 0 || r.Failures != 0 {
		t.Errorf("status = %+v, %v; want the copy done once, without failure", r, err)
	}
	if n := dueOn(t, b); n != 0 {
		t.Errorf("b found %d tasks after a finished", n)
	}
}
