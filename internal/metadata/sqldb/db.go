// Package sqldb implements metadata.Store on SQL databases. SQLite
// (modernc.org/sqlite, pure Go) is the embedded default; the schema and
// queries are kept portable so that PostgreSQL can share them.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/wharf/wharf/internal/metadata"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

var _ metadata.Store = (*DB)(nil)

// DB is a metadata store on a SQL database.
type DB struct {
	// write serialises writers: SQLite allows one at a time, and queuing them
	// in the pool is cheaper than retrying SQLITE_BUSY.
	write *sql.DB
	read  *sql.DB
	// point runs the pull path's one-value lookups on connections of its
	// own, bypassing database/sql (point.go).
	point *pointReader
	log   *slog.Logger
	clock func() time.Time
	// postgres selects PostgreSQL's dialect where SQL differs; write and
	// read are then one pool, and point is nil.
	postgres bool

	// stmts caches prepared read statements by query text: SQLite spends
	// more time parsing and planning a short query than running it.
	stmts sync.Map // string → *sql.Stmt
	// wstmts does the same for the write connection.
	wstmts sync.Map // string → *sql.Stmt

	// ckpt checkpoints SQLite's WAL beside the writers (checkpoint.go).
	ckpt *checkpointer
	// group runs the write transactions (groupcommit.go).
	group groupCommit
	// lookups shares PostgreSQL's point lookups between concurrent callers
	// (coalesce.go).
	lookups lookupGroup
}

// stmtTx is a write transaction whose queries use statements prepared on
// the write connection. The pool has one connection, which the transaction
// holds, so a statement cannot be prepared there during it: a query seen
// for the first time runs as is and is prepared once the transaction has
// ended. On SQLite a query the transaction runs again (a loop over
// digests, say) is prepared for the rest of the transaction, rather than
// parsed once per row.
// Migrations, which run multi-statement scripts, use the embedded *sql.Tx.
//
// On SQLite its methods drop the cancellation of their context: the
// transaction is shared by several writers (groupcommit.go), and SQLite
// may roll back a whole transaction when one of its statements is
// interrupted.
type stmtTx struct {
	*sql.Tx
	db  *DB
	new []string // queries to prepare after the transaction
	// local holds the statements prepared in the transaction, for the
	// queries of new it runs more than once.
	local map[string]*sql.Stmt
	// derived holds the images ("repo_id digest") this transaction
	// stored fresh, with the base their lineage names ("" for none): a tag
	// pointing at one carries that base, or none, which upsertTag then
	// knows without reading the lineage.
	derived map[string]derivedBase
	// sinks, once read, says whether any webhook or replication rule
	// exists, for the events of one write (eventSinks).
	sinks *eventSinks
}

func (tx *stmtTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := tx.db.wstmts.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	if st, ok := tx.local[query]; ok {
		return st
	}
	if tx.db.postgres || !slices.Contains(tx.new, query) {
		tx.new = append(tx.new, query)
		return nil
	}
	// Closed with the transaction.
	st, err := tx.Tx.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if tx.local == nil {
		tx.local = map[string]*sql.Stmt{}
	}
	tx.local[query] = st
	return st
}

// uncancelled drops ctx's cancellation on SQLite, whose transactions
// writers share (see stmtTx).
func (tx *stmtTx) uncancelled(ctx context.Context) context.Context {
	if tx.db.postgres {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// ExecContext runs a statement inside the transaction.
func (tx *stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = tx.uncancelled(ctx)
	if st := tx.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query inside the transaction.
func (tx *stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = tx.uncancelled(ctx)
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a one-row query inside the transaction.
func (tx *stmtTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = tx.uncancelled(ctx)
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, query, args...)
}

// readStmt returns the prepared statement for query on the read pool.
func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.prepared(ctx, &db.stmts, db.read, query)
}

// prepared returns query prepared on pool, from cache when it can.
func (db *DB) prepared(ctx context.Context, cache *sync.Map, pool *sql.DB, query string) (*sql.Stmt, error) {
	if st, ok := cache.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := cache.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// query runs a prepared read query.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := db.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// exec runs a one-statement write, prepared once on the write connection;
// on SQLite in a transaction shared with other writers (groupcommit.go).
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if db.postgres {
		st, err := db.prepared(ctx, &db.wstmts, db.write, query)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	var res sql.Result
	err := db.inTx(ctx, func(tx *stmtTx) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// queryRow runs a prepared read query returning one row.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := db.readStmt(ctx, query)
	if err != nil {
		// QueryRowContext reports the same preparation error through Scan.
		return db.read.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// pointLookup strips ctx's cancellation for a query that reads one row by
// primary key. With a cancellable context the driver starts a goroutine per
// query to watch it and installs a progress handler, which costs more than
// the lookup itself (microseconds), and a lookup that short has nothing
// worth interrupting. The request's values still reach the query, and a
// context already done is passed on as is, so the query fails with its
// error as the metadata contract wants.
func pointLookup(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// OpenSQLite opens (creating if needed) the SQLite database at path and
// applies pending migrations.
func OpenSQLite(ctx context.Context, path string, log *slog.Logger, opts ...Option) (*DB, error) {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"busy_timeout(10000)",
		// FULL syncs the WAL at every commit. NORMAL would survive a process
		// crash but not a machine crash, which could undo manifests, tags
		// and links already answered 201: a write is acknowledged only once
		// it is on disk. Every connection gets the same DSN, so the setting
		// holds for all of them (TestOpenSQLite_EveryConnectionSyncsFull).
		"synchronous(FULL)",
		"foreign_keys(1)",
		fmt.Sprintf("wal_autocheckpoint(%d)", checkpointBackstop),
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()

	write, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)

	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{write: write, read: read, log: log, clock: time.Now, group: newGroupCommit()}
	for _, o := range opts {
		o(db)
	}
	db.point = newPointReader(read.Driver(), dsn)
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	wal, err := openWALIndex(read.Driver(), dsn, path)
	if err != nil {
		// Lookups still work, each one asking SQLite.
		log.Warn("sqlite: cannot map the WAL index; pull-path lookups are not memoized", "path", path, "err", err)
	}
	db.point.wal.Store(wal) // nil: no memo
	if db.ckpt, err = startCheckpointer(dsn, walFrames(db.point), log); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// Close releases the connection pools.
func (db *DB) Close() error {
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.stop())
	}
	if db.point != nil {
		db.point.close()
	}
	for _, cache := range []*sync.Map{&db.stmts, &db.wstmts} {
		cache.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	}
	if db.read == db.write {
		return errors.Join(append(errs, db.read.Close())...)
	}
	return errors.Join(append(errs, db.read.Close(), db.write.Close())...)
}

// Ping reports whether the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// inTx runs fn in a write transaction, committing when it returns nil.
// On SQLite the transaction is shared with concurrent writers (groupTx);
// on PostgreSQL a transaction that lost a race to a concurrent one is run
// again (see retryable).
func (db *DB) inTx(ctx context.Context, fn func(tx *stmtTx) error) error {
	if !db.postgres {
		return db.groupTx(ctx, fn)
	}
	return db.retryTx(ctx, fn)
}

func (db *DB) inTxOnce(ctx context.Context, fn func(tx *stmtTx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	stx := &stmtTx{Tx: tx, db: db}
	if err := fn(stx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, q := range stx.new {
		// Best effort: a query that cannot be prepared just stays unprepared.
		_, _ = db.prepared(ctx, &db.wstmts, db.write, q)
	}
	return nil
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// notFound turns sql.ErrNoRows into metadata.ErrNotFound with context.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, metadata.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}
