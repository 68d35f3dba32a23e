package sqldb

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite copies committed pages from the WAL into the database file (a
// checkpoint, which ends with an fsync of that file) on the connection
// whose commit finds the log at wal_autocheckpoint pages or more: here the
// writer, inside whichever push happened to commit then, with every write
// of its group (groupcommit.go) waiting for the copy. And once readers keep
// the log from starting over, every commit finds it that long and pays for
// a checkpoint of its own. A checkpointer runs them beside the writers
// instead, as often as SQLite would: a commit that brings the log
// checkpointFrames past the last checkpoint wakes it, and it runs a
// PASSIVE checkpoint on a connection of its own, which neither waits for
// nor blocks readers and writers. The writer's own checkpoint stays as a
// backstop, at checkpointBackstop pages, should the checkpointer fall
// behind.
const (
	checkpointFrames   = 1000 // SQLite's default wal_autocheckpoint
	checkpointBackstop = 8 * checkpointFrames
	// checkpointPause is the least time between two checkpoints when the
	// log's length cannot be read (no WAL index mapping): then every
	// commit wakes the checkpointer.
	checkpointPause = 50 * time.Millisecond
)

type checkpointer struct {
	conn *sql.DB
	// frames returns the log's length in frames; false when it cannot tell.
	frames func() (uint32, bool)
	// last is the log's length at the last checkpoint.
	last atomic.Uint32
	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	log  *slog.Logger
	once sync.Once
}

// startCheckpointer opens the checkpointer's connection with dsn and
// starts it.
func startCheckpointer(dsn string, frames func() (uint32, bool), log *slog.Logger) (*checkpointer, error) {
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	c := &checkpointer{conn: conn, frames: frames, wake: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}), log: log}
	go c.run()
	return c, nil
}

// walFrames reads the log's length from the WAL index header (its
// mxFrame), which every commit updates.
func walFrames(p *pointReader) func() (uint32, bool) {
	return func() (uint32, bool) {
		w := p.wal.Load()
		if w == nil {
			return 0, false
		}
		v, ok := w.version()
		return v[4], ok
	}
}

// committed tells the checkpointer that the log grew; it never waits.
func (c *checkpointer) committed() {
	if n, ok := c.frames(); ok {
		last := c.last.Load()
		if n < last {
			last = 0 // the log started over
		}
		if n-last < checkpointFrames {
			return
		}
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-c.quit:
			return
		}
		var busy, logged, copied int
		err := c.conn.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logged, &copied)
		if err != nil {
			c.log.Debug("sqlite: checkpoint", "err", err)
			continue
		}
		if logged >= 0 {
			c.last.Store(uint32(logged))
		}
		if _, ok := c.frames(); ok {
			continue
		}
		select {
		case <-time.After(checkpointPause):
		case <-c.quit:
			return
		}
	}
}

// stop ends the checkpointer and closes its connection; closing a DB
// twice stops it once.
func (c *checkpointer) stop() (err error) {
	c.once.Do(func() {
		close(c.quit)
		<-c.done
		err = c.conn.Close()
	})
	return err
}
