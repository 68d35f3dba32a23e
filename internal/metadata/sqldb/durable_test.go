package sqldb

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// syncFull is PRAGMA synchronous's value for FULL.
const syncFull = 2

// Every connection the store opens syncs the WAL at each commit: a write
// answered 201 must survive a machine crash, and a connection opened with
// other settings (a pool, the point-lookup connections, the WAL-index pin)
// would quietly commit without syncing if a write ever ran on it.
func TestOpenSQLite_EveryConnectionSyncsFull(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))

	// Hold several read connections at once so the pool has to open new
	// ones rather than hand back the same one.
	pools := map[string]*sql.DB{"write": db.write, "read": db.read}
	for name, pool := range pools {
		var conns []*sql.Conn
		for range 3 {
			c, err := pool.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if name == "write" {
				break // one connection by design; a second would wait forever
			}
		}
		for i, c := range conns {
			var mode int
			if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil || mode != syncFull {
				t.Errorf("%s pool connection %d: synchronous = %d, %v; want %d (FULL)", name, i, mode, err, syncFull)
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}

	var point []*pointConn
	for range pointConns {
		c, err := db.point.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		point = append(point, c)
	}
	if w := db.point.wal.Load(); w != nil {
		point = append(point, w.pin)
	} else {
		t.Error("no WAL-index pin connection to check")
	}
	for i, c := range point {
		v, err := c.lookup(context.Background(), `PRAGMA synchronous`, nil)
		if err == nil {
			err = c.finish()
		}
		if mode, _ := v.(int64); err != nil || mode != syncFull {
			t.Errorf("point connection %d: synchronous = %v, %v; want %d (FULL)", i, v, err, syncFull)
		}
	}
	for _, c := range point[:pointConns] {
		db.point.put(c, false)
	}
}
