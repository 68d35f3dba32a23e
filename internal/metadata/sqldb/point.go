package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// pointReader answers the pull path's one-row, one-column lookups (a tag's
// digest, whether a repository holds a manifest) on SQLite connections of
// its own, through the driver's interfaces instead of database/sql. On a
// manifest GET database/sql cost about as much CPU as SQLite itself: its
// pool's mutex, the per-connection statement lookup, a Rows with its locks
// and the argument conversion, all for one short query.
//
// Each lookup that reaches SQLite is its own autocommit read transaction,
// begun and ended by SQLite as through database/sql, so it sees every
// commit made before it started, by this process or another. Answers are
// memoized only for as long as the WAL index header, which every commit
// rewrites, stays the same (memo.go).
type pointReader struct {
	drv driver.Driver
	dsn string

	// wal is nil when the WAL index could not be mapped, and after close:
	// no memo then.
	wal  atomic.Pointer[walIndex]
	memo memo
	// idle holds connections not in use; slots bounds how many are open.
	idle  chan *pointConn
	slots chan struct{}

	mu     sync.Mutex
	closed bool

	// hmu guards active (lookups between taking a connection and handing
	// it off) and open (a connection whose statement handOff left open).
	hmu    sync.Mutex
	active int
	open   *pointConn
	// linger ends open when no lookup does (endOpen).
	linger *time.Timer
}

// pointConn is one connection and its statements. Only the goroutine that
// took it from the pool uses it.
type pointConn struct {
	conn  driver.Conn
	stmts map[string]driver.Stmt
	rows  driver.Rows // the last lookup's statement, until finish
	args  [2]driver.NamedValue
	dest  [1]driver.Value
}

// pointConns bounds the pool. A lookup never waits on I/O unless a writer
// holds a lock, so a few connections per core keep every core busy.
const pointConns = 4

func newPointReader(drv driver.Driver, dsn string) *pointReader {
	p := &pointReader{
		drv:   drv,
		dsn:   dsn,
		idle:  make(chan *pointConn, pointConns),
		slots: make(chan struct{}, pointConns),
	}
	p.linger = time.AfterFunc(time.Hour, p.endOpen)
	p.linger.Stop()
	return p
}

var errPointClosed = errors.New("sqldb: database closed")

// get takes an idle connection, or opens one when fewer than pointConns
// are open, or waits for one.
func (p *pointReader) get(ctx context.Context) (*pointConn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.slots <- struct{}{}:
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			<-p.slots
			return nil, errPointClosed
		}
		conn, err := p.drv.Open(p.dsn)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return &pointConn{conn: conn, stmts: map[string]driver.Stmt{}}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns c to the pool, or closes it when it failed or the pool is
// closed.
func (p *pointReader) put(c *pointConn, broken bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if broken || p.closed {
		c.close()
		<-p.slots
		return
	}
	p.idle <- c // never blocks: at most pointConns exist
}

func (c *pointConn) close() {
	_ = c.finish()
	for _, st := range c.stmts {
		_ = st.Close()
	}
	_ = c.conn.Close()
}

// close closes the idle connections now and the others when they are
// returned.
func (p *pointReader) close() {
	p.linger.Stop()
	if w := p.wal.Swap(nil); w != nil {
		w.close()
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.endOpen()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			c.close()
			<-p.slots
		default:
			return
		}
	}
}

// lookup runs query, which must select one column, with up to two
// arguments, and returns the first row's value: a string, an int64, a
// []byte or nil, as the driver gives them. No row is sql.ErrNoRows. ctx's
// cancellation is not passed to SQLite (see pointLookup), but a context
// already done fails the lookup, and ctx ends a wait for a connection.
func (p *pointReader) lookup(ctx context.Context, query string, args ...any) (driver.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(args) > 2 {
		return nil, fmt.Errorf("sqldb: point lookup with %d arguments", len(args))
	}
	// The version is read before the query runs, so an answer is filed
	// under a version no newer than the data it saw: reused only while
	// nothing has committed since (memo.go).
	var ver walVersion
	known := false
	if w := p.wal.Load(); w != nil {
		ver, known = w.version()
	}
	key := newMemoKey(query, args)
	if known {
		if v, err, ok := p.memo.get(ver, key); ok {
			return v, err
		}
	}
	v, err := p.query(ctx, query, args)
	if known {
		p.memo.put(ver, key, v, err)
	}
	return v, err
}

// query runs the lookup on a pooled connection.
func (p *pointReader) query(ctx context.Context, query string, args []any) (driver.Value, error) {
	c, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	p.hmu.Lock()
	p.active++
	p.hmu.Unlock()
	// Background, not WithoutCancel(ctx): the driver uses the context only
	// to cancel, and the wrapper would be an allocation per lookup.
	v, err := c.lookup(context.Background(), query, args)
	p.handOff(c, err)
	return v, err
}

// handOff ends c's lookup, overlapping the ends of read transactions.
//
// Each lookup is an autocommit read transaction, and SQLite's unix VFS
// takes a WAL read lock with fcntl(2) when the transaction begins and
// drops it when it ends, unless another connection of this process holds
// the same lock then: it counts holders per process. Back to back
// lookups that never overlap pay two fcntl calls each, about a tenth of
// a manifest GET's CPU. So c's transaction, which has read its row, is
// left open (its statement not yet reset) until the next lookup has
// begun its own and finished, or for lingerMax when no lookup is under
// way: under load the lock is handed from one transaction to the next
// without being dropped.
//
// That changes nothing a lookup sees: each still begins its own
// transaction after it was asked, on the latest commit; nothing is served
// from the one left open. At most one is open that way at a time, and
// for at most lingerMax after it has read its row (or until the lookup
// that is to end it ends), so the WAL is never pinned for longer.
func (p *pointReader) handOff(c *pointConn, err error) {
	// An error from SQLite (busy past the timeout, I/O) may leave the
	// connection in any state: start afresh rather than find out.
	broken := err != nil && !errors.Is(err, sql.ErrNoRows)
	p.hmu.Lock()
	p.active--
	prev := p.open
	p.open = nil
	// Only an open statement holds a transaction worth keeping.
	keep := !broken && c.rows != nil
	if keep {
		p.open = c
	}
	// A lookup under way ends c as this one ends prev; otherwise the timer.
	arm := keep && p.active == 0
	p.hmu.Unlock()
	if arm {
		p.linger.Reset(lingerMax)
	}
	if prev != nil {
		p.put(prev, prev.finish() != nil)
	}
	if !keep {
		if c.finish() != nil {
			broken = true
		}
		p.put(c, broken)
	}
}

// lingerMax bounds how long handOff keeps a finished lookup's read
// transaction open when no other lookup is under way.
const lingerMax = time.Millisecond

// endOpen ends the transaction handOff left open, if any.
func (p *pointReader) endOpen() {
	p.hmu.Lock()
	c := p.open
	p.open = nil
	p.hmu.Unlock()
	if c != nil {
		p.put(c, c.finish() != nil)
	}
}

// finish ends c's statement, if one is open, and so its read transaction.
func (c *pointConn) finish() error {
	if c.rows == nil {
		return nil
	}
	err := c.rows.Close()
	c.rows = nil
	return err
}

// lookup runs the query and reads the first row, leaving the statement
// open (c.rows) when there is one: see handOff.
func (c *pointConn) lookup(ctx context.Context, query string, args []any) (driver.Value, error) {
	st, ok := c.stmts[query]
	if !ok {
		var err error
		if st, err = c.conn.Prepare(query); err != nil {
			return nil, err
		}
		c.stmts[query] = st
	}
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("sqldb: the driver's statements lack QueryContext")
	}
	named := c.args[:len(args)]
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := q.QueryContext(ctx, named)
	clear(named) // drop the references to the arguments
	if err != nil {
		return nil, err
	}
	err = rows.Next(c.dest[:])
	v := c.dest[0]
	c.dest[0] = nil
	if err != nil {
		// No row (the statement has run to its end, so its transaction is
		// over) or a failure: nothing to keep open.
		cerr := rows.Close()
		if errors.Is(err, io.EOF) {
			if cerr != nil {
				return nil, cerr
			}
			return nil, sql.ErrNoRows
		}
		return nil, err
	}
	c.rows = rows
	return v, nil
}
