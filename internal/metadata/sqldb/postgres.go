package sqldb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// isPostgresURL reports whether s names a PostgreSQL database rather than
// a SQLite file.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open opens the metadata database that location names: a
// postgres:// or postgresql:// URL, or else the path of a SQLite file.
func Open(ctx context.Context, location string, log *slog.Logger, opts ...Option) (*DB, error) {
	if isPostgresURL(location) {
		return OpenPostgres(ctx, location, log, opts...)
	}
	return OpenSQLite(ctx, location, log, opts...)
}

// pgPoolSize bounds a replica's connections unless the database URL's
// pool_max_conns says otherwise. Requests hold one only for a query or a
// short transaction.
const pgPoolSize = 16

// poolMaxConnsParam is the database URL parameter that sizes the pool: the
// name pgx's own pool reads, so that a URL written for other pgx programs
// means the same here.
const poolMaxConnsParam = "pool_max_conns"

// execModeParam is pgx's database URL parameter for how queries are sent;
// wharf's default, when it is absent, is exec (see OpenPostgres).
const execModeParam = "default_query_exec_mode"

// hasParam reports whether the database URL dsn sets the parameter name.
func hasParam(dsn, name string) bool {
	u, err := url.Parse(dsn)
	return err == nil && u.Query().Has(name)
}

// takePoolSize returns dsn without its pool_max_conns parameter and the
// pool size it asks for (pgPoolSize when absent). The parameter must go:
// pgx would send an unknown one to the server as a run-time setting, which
// the server rejects.
func takePoolSize(dsn string) (string, int, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn, pgPoolSize, nil // pgx.ParseConfig reports it
	}
	q := u.Query()
	if !q.Has(poolMaxConnsParam) {
		return dsn, pgPoolSize, nil
	}
	v := q.Get(poolMaxConnsParam)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return dsn, 0, fmt.Errorf("%s=%q: want a whole number of connections, at least 1", poolMaxConnsParam, v)
	}
	q.Del(poolMaxConnsParam)
	u.RawQuery = q.Encode()
	return u.String(), n, nil
}

// OpenPostgres connects to the PostgreSQL database that dsn names
// (postgres://USER[:PASS]@HOST:PORT/DB?sslmode=…) and applies pending
// migrations under an advisory lock, so that replicas starting together
// apply each migration once. Its errors are one line that says what to
// fix, without the password.
func OpenPostgres(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (*DB, error) {
	dsn, poolSize, err := takePoolSize(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %v", redactURL(dsn), err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %v", redactURL(dsn), oneLine(err))
	}
	// No server-side prepared statements unless the URL asks for them
	// (pgx's own default_query_exec_mode, e.g. cache_statement, for a
	// direct connection): behind PgBouncer in transaction mode consecutive
	// queries may reach different server connections, and wharf cannot
	// tell from the URL whether a pooler is in between.
	if !hasParam(dsn, execModeParam) {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	pool := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)})
	pool.SetMaxOpenConns(poolSize)
	pool.SetMaxIdleConns(poolSize)
	pool.SetConnMaxIdleTime(5 * time.Minute)

	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{write: pool, read: pool, log: log, clock: time.Now, postgres: true}
	for _, o := range opts {
		o(db)
	}
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = pool.PingContext(pctx)
	cancel()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %s", where, describeConnectError(err, cfg))
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: migrate the schema: %s", where, oneLine(err))
	}
	return db, nil
}

// describeConnectError says what to fix when no connection could be made.
func describeConnectError(err error, cfg *pgx.ConnConfig) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return fmt.Sprintf("authentication of user %q failed (check the user and password in the database URL): %s", cfg.User, pe.Message)
		case "3D000":
			return fmt.Sprintf("database %q does not exist (create it, or fix the database URL): %s", cfg.Database, pe.Message)
		case "53300":
			return "the server has no connection slot left: " + pe.Message
		}
		return oneLine(err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return "cannot reach the server (is it running, and are host and port right?): " + oneLine(err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within 30s (is the host right, and the port open?)"
	}
	return oneLine(err)
}

// oneLine flattens an error message that a driver spread over lines.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// redactURL hides the password of a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// migrationLockKey is the pg_advisory_xact_lock key migrations hold (an
// arbitrary constant: "wharf" in ASCII).
const migrationLockKey = 0x7768617266

// accountsLockKey serialises the transactions that create users and
// organisations, which share one namespace across two tables: a check
// and an insert on different tables cannot otherwise exclude each other
// under READ COMMITTED.
const accountsLockKey = 0x7768617267

// lockMigrations makes concurrent openers of one database apply the
// migrations one after another; the transaction-scoped lock works behind
// PgBouncer in transaction mode and goes with the transaction.
func (db *DB) lockMigrations(ctx context.Context, tx *stmtTx) error {
	if !db.postgres {
		return nil // SQLite's write transaction already excludes others
	}
	if _, err := tx.Tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(migrationLockKey)); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	return nil
}

// lockAccounts serialises account-creating transactions (see
// accountsLockKey); SQLite's write transactions already are.
func lockAccounts(ctx context.Context, tx *stmtTx) error {
	if !tx.db.postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(accountsLockKey)); err != nil {
		return fmt.Errorf("lock accounts: %w", err)
	}
	return nil
}

// retryable reports whether a PostgreSQL transaction failed only because
// another one ran at the same time, and would decide differently run
// again now: SQLite's single writer ran them one after another, which
// a retry reproduces. A unique or foreign key violation is one of these
// where the transaction checked first (a name taken, an owner gone) and
// a concurrent one changed the answer before the write.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"23505", // unique_violation
		"23503": // foreign_key_violation
		return true
	}
	return false
}

// txAttempts bounds retryTx: a transaction that loses this many races in
// a row reports the last error.
const txAttempts = 8

// retryTx runs fn in a transaction until it commits, fails for a reason
// of its own, or has lost txAttempts races (retryable).
func (db *DB) retryTx(ctx context.Context, fn func(tx *stmtTx) error) error {
	var err error
	for range txAttempts {
		if err = db.inTxOnce(ctx, fn); !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// lookup answers a one-value point lookup: on SQLite through the direct,
// memoized path (point.go), on PostgreSQL as a query that concurrent
// lookups of the same key share when they can do so without reading older
// data than their own query would (coalesce.go). The value is an int64, a
// string, a []byte or nil.
func (db *DB) lookup(ctx context.Context, query string, args ...any) (any, error) {
	if db.point != nil {
		return db.point.lookup(ctx, query, args...)
	}
	fetch := func(ctx context.Context) (any, error) {
		var v any
		if err := db.queryRow(ctx, query, args...).Scan(&v); err != nil {
			return nil, err
		}
		return v, nil
	}
	if len(args) > 2 || !comparableArgs(args) {
		return fetch(ctx)
	}
	v, err := db.lookups.do(ctx, newMemoKey(query, args), fetch)
	if b, ok := v.([]byte); ok {
		v = bytes.Clone(b) // the answer is shared with the other lookups
	}
	return v, err
}

// comparableArgs reports whether args can be part of a map key.
func comparableArgs(args []any) bool {
	for _, a := range args {
		switch a.(type) {
		case string, int64, int, bool, nil:
		default:
			return false
		}
	}
	return true
}
