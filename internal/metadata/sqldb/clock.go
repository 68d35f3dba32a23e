package sqldb

import "time"

// Option adjusts how a DB is opened.
type Option func(*DB)

// WithClock makes the DB read the time from now (default time.Now) for
// the times it records: link and push times, which garbage collection
// compares with its cutoff. Tests pass a clock they move.
func WithClock(now func() time.Time) Option { return func(db *DB) { db.clock = now } }

// now is the time to record, in the stored unit.
func (db *DB) now() int64 { return db.clock().UnixNano() }
