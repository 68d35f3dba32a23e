package sqldb

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTable stands in for a row: each fetch reads its value when the
// fetch starts (as a statement takes its snapshot) and then waits until
// the test releases it, so that the test controls what is in flight.
type fakeTable struct {
	value   atomic.Int64
	fetches atomic.Int64
	started chan int64    // the value each fetch read
	release chan struct{} // one receive per fetch to finish
}

func newFakeTable() *fakeTable {
	return &fakeTable{started: make(chan int64, 16), release: make(chan struct{})}
}

func (f *fakeTable) fetch(ctx context.Context) (any, error) {
	f.fetches.Add(1)
	v := f.value.Load()
	f.started <- v
	select {
	case <-f.release:
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lookupAsync runs g.do in a goroutine and returns where its answer comes.
func lookupAsync(ctx context.Context, g *lookupGroup, k memoKey, fetch func(context.Context) (any, error)) chan any {
	out := make(chan any, 1)
	go func() {
		v, err := g.do(ctx, k, fetch)
		if err != nil {
			out <- err
			return
		}
		out <- v
	}()
	return out
}

// waitAsked waits until n lookups of k wait for an answer, from the query
// in flight or the one forming: they were asked, and the test may go on.
func waitAsked(t *testing.T, g *lookupGroup, k memoKey, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		joined := 0
		if kf := g.keys[k]; kf != nil {
			for _, f := range []*flight{kf.running, kf.next} {
				if f != nil {
					joined += f.lookups
				}
			}
		}
		g.mu.Unlock()
		if joined == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups of %v asked, want %d", joined, k, n)
		}
		runtime.Gosched()
	}
}

// A lookup asked while a query is in flight must not take that query's
// answer: the query may have read the row before a write that committed
// before the lookup was asked. It gets a query of its own, sent after.
func TestLookupGroup_NeverAnswersFromAQuerySentBeforeTheLookup(t *testing.T) {
	var g lookupGroup
	tbl := newFakeTable()
	k := memoKey{query: "q", a: "app", b: "latest"}
	tbl.value.Store(1)

	first := lookupAsync(t.Context(), &g, k, tbl.fetch)
	if got := <-tbl.started; got != 1 {
		t.Fatalf("first query read %d, want 1", got)
	}
	// The tag moves and the writer's client has its answer; then the
	// next request arrives while the first query is still in flight.
	tbl.value.Store(2)
	second := lookupAsync(t.Context(), &g, k, tbl.fetch)
	waitAsked(t, &g, k, 2)

	tbl.release <- struct{}{}
	if got := <-first; got != int64(1) {
		t.Errorf("first lookup = %v, want 1", got)
	}
	select {
	case got := <-second:
		t.Fatalf("lookup asked after the write = %v from the query sent before it, want a query of its own", got)
	case got := <-tbl.started:
		if got != 2 {
			t.Fatalf("second query read %d, want 2", got)
		}
	}
	tbl.release <- struct{}{}
	if got := <-second; got != int64(2) {
		t.Errorf("lookup asked after the write = %v, want 2 (the moved tag)", got)
	}
}

// Lookups that arrive while one query is in flight share the next one:
// under load a hot key costs one query per round trip, not one per lookup.
func TestLookupGroup_LookupsWaitingTogetherShareOneQuery(t *testing.T) {
	var g lookupGroup
	tbl := newFakeTable()
	k := memoKey{query: "q", a: "app", b: "latest"}

	first := lookupAsync(t.Context(), &g, k, tbl.fetch)
	<-tbl.started
	const waiting = 10
	var outs []chan any
	for range waiting {
		outs = append(outs, lookupAsync(t.Context(), &g, k, tbl.fetch))
	}
	waitAsked(t, &g, k, 1+waiting)
	tbl.value.Store(7)
	tbl.release <- struct{}{}
	<-first
	select {
	case got := <-outs[0]:
		t.Fatalf("a lookup asked while a query was in flight took its answer (%v)", got)
	case <-tbl.started:
	}
	tbl.release <- struct{}{}
	for i, out := range outs {
		if got := <-out; got != int64(7) {
			t.Errorf("lookup %d = %v, want 7", i, got)
		}
	}
	if n := tbl.fetches.Load(); n != 2 {
		t.Errorf("%d queries for 1 + %d lookups, want 2", n, waiting)
	}
	g.mu.Lock()
	left := len(g.keys)
	g.mu.Unlock()
	if left != 0 {
		t.Errorf("%d keys left in the group after every lookup ended, want 0", left)
	}
}

// Different keys do not wait for each other.
func TestLookupGroup_KeysAreIndependent(t *testing.T) {
	var g lookupGroup
	tbl := newFakeTable()
	a := lookupAsync(t.Context(), &g, memoKey{query: "q", a: "a"}, tbl.fetch)
	b := lookupAsync(t.Context(), &g, memoKey{query: "q", a: "b"}, tbl.fetch)
	<-tbl.started
	<-tbl.started // both in flight at once
	tbl.release <- struct{}{}
	tbl.release <- struct{}{}
	<-a
	<-b
}

// A lookup whose caller gives up returns at once with its context's
// error; the query goes on for the others that share it, with a context
// the caller's cancellation does not reach.
func TestLookupGroup_CancelledCallerLeavesTheQueryToOthers(t *testing.T) {
	var g lookupGroup
	tbl := newFakeTable()
	k := memoKey{query: "q", a: "app"}
	tbl.value.Store(3)

	ctx, cancel := context.WithCancel(t.Context())
	first := lookupAsync(ctx, &g, k, tbl.fetch)
	<-tbl.started
	other := make(chan any, 1)
	go func() {
		// Joins nothing (the query is in flight): starts the next one.
		v, _ := g.do(t.Context(), k, tbl.fetch)
		other <- v
	}()
	waitAsked(t, &g, k, 2)
	cancel()
	if got := <-first; !errors.Is(got.(error), context.Canceled) {
		t.Fatalf("cancelled lookup = %v, want context.Canceled", got)
	}
	tbl.release <- struct{}{} // the first query was not cancelled: it answers
	<-tbl.started
	tbl.release <- struct{}{}
	if got := <-other; got != int64(3) {
		t.Errorf("other lookup = %v, want 3", got)
	}
	if _, err := g.do(ctx, k, tbl.fetch); !errors.Is(err, context.Canceled) {
		t.Errorf("lookup with a context already done = %v, want context.Canceled", err)
	}
}

// Many lookups racing writes: every lookup sees at least the value
// written before it was asked (run with -race).
func TestLookupGroup_RacingLookupsSeeEveryEarlierWrite(t *testing.T) {
	var g lookupGroup
	var value atomic.Int64
	fetch := func(context.Context) (any, error) {
		runtime.Gosched() // let others pile up behind the query in flight
		return value.Load(), nil
	}
	k := memoKey{query: "q"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				before := value.Load()
				v, err := g.do(t.Context(), k, fetch)
				if err != nil {
					t.Error(err)
					return
				}
				if v.(int64) < before {
					t.Errorf("lookup asked after value %d was written read %d", before, v)
					return
				}
			}
		})
	}
	for range 2000 {
		value.Add(1)
		runtime.Gosched()
	}
	wg.Wait()
}
