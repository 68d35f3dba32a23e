package sqldb

import (
	"context"
	"database/sql/driver"
	"sync/atomic"
)

// walVersion is a snapshot of the WAL index header: SQLite rewrites it on
// every commit (its change counter, frame count and checksums move), and
// readers learn what the database holds from it. Two equal snapshots mean
// no transaction committed in between, by any connection of any process.
type walVersion [walHeaderWords]uint32

// walHeaderWords is the size of one copy of the header (WalIndexHdr, 48
// bytes; https://www.sqlite.org/walformat.html#the_wal_index_file_format).
// The file starts with two copies: a writer updates the second, then the
// first, so a reader that finds them equal has not caught a write halfway.
const walHeaderWords = 12

// pinSQLite opens a connection that is kept for the index's life and runs
// a read on it, so that SQLite has opened the WAL index. While this process
// holds a connection (and its locks: see walIndexMaps), no process
// truncates or deletes the -shm file: SQLite only resets it when the first
// connection opens and removes it when the last closes, and this pin keeps
// it from being either.
func pinSQLite(drv driver.Driver, dsn string) (*pointConn, error) {
	conn, err := drv.Open(dsn)
	if err != nil {
		return nil, err
	}
	c := &pointConn{conn: conn, stmts: map[string]driver.Stmt{}}
	_, err = c.lookup(context.Background(), "SELECT count(*) FROM sqlite_master", nil)
	if err == nil {
		err = c.finish()
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// readWALHeader reads the two header copies from words, the start of the
// mapped index, and reports whether they agree.
func readWALHeader(words *[2 * walHeaderWords]uint32) (walVersion, bool) {
	var a, b walVersion
	for i := range a {
		a[i] = atomic.LoadUint32(&words[i])
	}
	for i := range b {
		b[i] = atomic.LoadUint32(&words[walHeaderWords+i])
	}
	// isInit (word 3) is zero until the index has been built from the WAL.
	return a, a == b && a[3] != 0
}
