package sqldb

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/auth/authtest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/metadatatest"
	"github.com/wharf/wharf/internal/servicetest"
)

// openPostgres opens a new empty database on the test process's cluster,
// closing it when the test ends.
func openPostgres(t *testing.T, opts ...Option) *DB {
	t.Helper()
	url := servicetest.StartPostgres(t).Database(t)
	db, err := Open(t.Context(), url, nil, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPostgres_Contract(t *testing.T) {
	servicetest.StartPostgres(t)
	metadatatest.Run(t, func(t *testing.T) metadata.Store { return openPostgres(t) })
}

func TestPostgres_CatalogContract(t *testing.T) {
	servicetest.StartPostgres(t)
	metadatatest.RunCatalog(t, func(t *testing.T) metadata.Store { return openPostgres(t) })
}

func TestPostgres_AuthContract(t *testing.T) {
	servicetest.StartPostgres(t)
	authtest.Run(t, func(t *testing.T) auth.Store { return openPostgres(t) })
}

// Replicas that start together on a new database each apply the
// migrations or find them applied; none fails on another's half-made
// schema.
func TestPostgres_ParallelOpensMigrateOnce(t *testing.T) {
	url := servicetest.StartPostgres(t).Database(t)
	const replicas = 6
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	dbs := make([]*DB, replicas)
	for i := range replicas {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), url, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	var n, max int
	if err := dbs[0].read.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != len(pgMigrations) || max != len(pgMigrations) {
		t.Errorf("schema_migrations has %d rows up to version %d; want %d", n, max, len(pgMigrations))
	}
}

func TestPostgres_MigrationsNumberedAsSQLite(t *testing.T) {
	if len(pgMigrations) != len(migrations) {
		t.Errorf("%d PostgreSQL migrations, %d SQLite ones: add a new one to both lists", len(pgMigrations), len(migrations))
	}
}

// A database URL that cannot work fails Open with one line saying what
// to fix, and never shows the password.
func TestPostgres_OpenErrorsSayWhatToFix(t *testing.T) {
	pg := servicetest.StartPostgres(t)
	closed := "127.0.0.1:1" // nothing listens on port 1
	tests := []struct {
		name, url string
		want      string
	}{
		{"unreachable", "postgres://wharf:s3cret@" + closed + "/x?sslmode=disable&connect_timeout=5", "cannot reach the server"},
		{"missing database", "postgres://" + pg.User + ":s3cret@" + pg.Addr + "/no_such_db?sslmode=disable", `database "no_such_db" does not exist`},
		{"unknown user", "postgres://nobody:s3cret@" + pg.Addr + "/postgres?sslmode=disable", `authentication of user "nobody" failed`},
		{"bad URL", "postgres://wharf:s3cret@" + pg.Addr + "/x?sslmode=bogus", "database URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(t.Context(), tt.url, nil)
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded; want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "s3cret") {
				t.Errorf("Open error = %q; want one line containing %q, without the password", msg, tt.want)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c IN (?,?)`, `SELECT a FROM t WHERE b = $1 AND c IN ($2,$3)`},
		{`SELECT '?', "a?b", ? -- why?` + "\n" + `, ?`, `SELECT '?', "a?b", $1 -- why?` + "\n" + `, $2`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
