package servicetest

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/throwaway"
)

// Postgres is a running PostgreSQL cluster that tests make databases in.
type Postgres struct {
	*throwaway.Postgres
}

// One cluster serves every test of a test process: initdb costs about a
// second, a database a few milliseconds.
var (
	pgOnce    sync.Once
	pgCluster *Postgres
	pgErr     error
)

// StartPostgres returns the test process's PostgreSQL cluster, starting it
// on first use. It stops when the test process exits, however it exits: a
// watcher process started beside it stops it then.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	pgOnce.Do(func() {
		var p *throwaway.Postgres
		if p, pgErr = throwaway.StartPostgres(throwaway.PostgresConfig{}); pgErr == nil {
			pgCluster = &Postgres{p}
		}
	})
	if errors.Is(pgErr, throwaway.ErrNotInstalled) {
		missing(t, "PostgreSQL 15", pgErr.Error())
	}
	if pgErr != nil {
		t.Fatalf("start PostgreSQL: %v", pgErr)
	}
	return pgCluster
}

// Database creates a new empty database and returns its URL; it is
// dropped when the test ends.
func (p *Postgres) Database(t testing.TB) string {
	t.Helper()
	return p.database(t, p.CreateDatabase)
}

// database creates a database with create, under a new name, and drops it
// when the test ends.
func (p *Postgres) database(t testing.TB, create func(ctx context.Context, name string) (string, error)) string {
	t.Helper()
	name := "t_" + strings.ToLower(rand.Text()[:16])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, err := create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// WITH (FORCE): a connection the test leaked must not keep it.
		if err := p.DropDatabase(ctx, name); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return url
}

// templates are the databases DatabaseFrom copies, one per key and test
// process.
var (
	templatesMu sync.Mutex
	templates   = map[string]*template{}
)

type template struct {
	once sync.Once
	name string
	err  error
}

// DatabaseFrom creates a new database (dropped when the test ends) as a copy
// of a template that prepare fills once per test process and key, and
// returns its URL. Tests that each need a migrated schema copy it in a
// fraction of the time that applying every migration again takes.
func (p *Postgres) DatabaseFrom(t testing.TB, key string, prepare func(ctx context.Context, url string) error) string {
	t.Helper()
	templatesMu.Lock()
	tpl, ok := templates[key]
	if !ok {
		tpl = &template{name: "tpl_" + strings.ToLower(key)}
		templates[key] = tpl
	}
	templatesMu.Unlock()
	tpl.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		url, err := p.CreateDatabase(ctx, tpl.name)
		if err == nil {
			// prepare must close its connections: a template in use
			// cannot be copied.
			err = prepare(ctx, url)
		}
		tpl.err = err
	})
	if tpl.err != nil {
		t.Fatalf("template database %s: %v", tpl.name, tpl.err)
	}
	return p.database(t, func(ctx context.Context, name string) (string, error) {
		return p.CreateDatabaseFrom(ctx, name, tpl.name)
	})
}
