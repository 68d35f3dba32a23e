package sqldb

import (
	"context"
	"database/sql/driver"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/stdlib"
)

// pgConnector hands database/sql PostgreSQL connections (pgx's adapter)
// that take the package's `?` placeholders. Every query of the package,
// whichever pool or transaction runs it, passes through here, so queries
// are written once for both databases and rebound in one place.
type pgConnector struct{ driver.Connector }

// Connect opens a connection.
func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{conn.(*stdlib.Conn)}, nil
}

// pgConn is a pgx connection whose statements database/sql never prepares
// on the server: behind PgBouncer in transaction mode a named statement
// may live on another server connection than the next query. Queries run
// in pgx's default mode, QueryExecModeExec unless the URL chose another
// (one round trip, unnamed statement), so "preparing" only rebinds the
// text and keeps it; a mode that caches statements does so inside pgx.
type pgConn struct{ *stdlib.Conn }

var (
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
)

// Prepare returns a client-side statement.
func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return &pgStmt{conn: c, query: rebind(query)}, nil
}

// PrepareContext returns a client-side statement.
func (c *pgConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return c.Prepare(query)
}

// ExecContext runs query with `?` placeholders.
func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

// QueryContext runs query with `?` placeholders.
func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// pgStmt is a query kept for reuse on one connection.
type pgStmt struct {
	conn  *pgConn
	query string // already rebound
}

func (s *pgStmt) Close() error  { return nil }
func (s *pgStmt) NumInput() int { return -1 }

func (s *pgStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, driver.ErrSkip // database/sql uses ExecContext
}

func (s *pgStmt) Query([]driver.Value) (driver.Rows, error) {
	return nil, driver.ErrSkip // database/sql uses QueryContext
}

func (s *pgStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.conn.Conn.ExecContext(ctx, s.query, args)
}

func (s *pgStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.conn.Conn.QueryContext(ctx, s.query, args)
}

// rebound caches rebind's answers: the package has a few hundred query
// texts, each run many times.
var rebound sync.Map // string → string

// rebind turns the `?` placeholders of query into PostgreSQL's $1, $2, …,
// leaving string literals, quoted identifiers and comments alone.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		case c == '\'' || c == '"':
			// Copy through the closing quote; a doubled quote is an
			// escaped one and simply reopens.
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				i = len(query)
				continue
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
			continue
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j - 1
			continue
		}
		b.WriteByte(c)
	}
	q := b.String()
	rebound.Store(query, q)
	return q
}
