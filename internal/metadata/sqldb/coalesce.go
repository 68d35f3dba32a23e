package sqldb

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lookupGroup lets concurrent point lookups of the same key share one
// query without ever answering from data older than the lookup.
//
// On PostgreSQL every manifest GET by tag asked the database, each its own
// round trip, and the server's CPU per query (parse, plan, a backend
// wake-up) capped pulls at a fraction of the SQLite rate, where a memo of
// the WAL index answers from memory (memo.go). PostgreSQL has no such
// header to read for free, and a per-replica cache invalidated by
// LISTEN/NOTIFY cannot by itself promise what replicas must: a tag moved
// on one replica is seen by the very next request on another (a
// notification arrives after the writer's client has its answer, and a
// replica whose listener lags would serve the old digest).
//
// So nothing is kept between lookups. Instead, lookups of one key that
// arrive together share a query, under one rule: a lookup joins only a
// query that has not been sent yet. Its query therefore starts after the
// lookup was asked, and PostgreSQL (READ COMMITTED) gives each statement a
// snapshot taken when it starts: it sees every commit that was
// acknowledged before the lookup began, on any replica, as a query of its
// own would. Per key there is at most one query in flight and one
// forming; the forming one is sent when the one in flight answers, and
// every lookup that arrived meanwhile takes its answer. Under load many
// GETs of a hot tag cost one round trip; a lone lookup costs what it did.
//
// The zero value is ready.
type lookupGroup struct {
	mu   sync.Mutex
	keys map[memoKey]*keyFlights
	// sent counts the queries sent, for benchmarks to compare with the
	// lookups asked.
	sent atomic.Int64
}

// keyFlights is one key's query in flight and the one forming behind it.
type keyFlights struct {
	running, next *flight
}

// flight is one query and the lookups waiting for its answer.
type flight struct {
	done chan struct{}
	v    any
	err  error
	// lookups counts the lookups that take this answer (under the
	// group's mutex): tests wait on it to know a lookup has joined.
	lookups int
}

// lookupTimeout bounds a shared query: its lookups may have contexts
// without deadlines, and the query must not outlive a database that
// stopped answering by more than this.
const lookupTimeout = time.Minute

// do returns fetch's answer for k from a query sent after do was called,
// shared with the other lookups of k that join it (see lookupGroup).
// fetch runs without the cancellation of any one caller's ctx, since
// others wait for it; ctx ends only this caller's wait.
func (g *lookupGroup) do(ctx context.Context, k memoKey, fetch func(context.Context) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.keys == nil {
		g.keys = map[memoKey]*keyFlights{}
	}
	kf := g.keys[k]
	if kf == nil {
		kf = &keyFlights{}
		g.keys[k] = kf
	}
	f := kf.next
	if f == nil {
		// Nothing forming: this lookup starts a query, at once or as soon
		// as the one in flight (sent before it was asked) has answered.
		f = &flight{done: make(chan struct{})}
		prev := kf.running
		if prev == nil {
			kf.running = f
		} else {
			kf.next = f
		}
		go g.run(context.WithoutCancel(ctx), k, kf, f, prev, fetch)
	}
	f.lookups++
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run sends f's query once prev, if any, has answered, and hands the
// answer to every lookup that joined f.
func (g *lookupGroup) run(ctx context.Context, k memoKey, kf *keyFlights, f, prev *flight, fetch func(context.Context) (any, error)) {
	if prev != nil {
		<-prev.done
		g.mu.Lock()
		// From here on f is sent: a lookup arriving now must not join it.
		kf.running, kf.next = f, nil
		g.mu.Unlock()
	}
	g.sent.Add(1)
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	f.v, f.err = fetch(ctx)
	cancel()
	g.mu.Lock()
	kf.running = nil
	if kf.next == nil {
		delete(g.keys, k)
	}
	g.mu.Unlock()
	close(f.done)
}
