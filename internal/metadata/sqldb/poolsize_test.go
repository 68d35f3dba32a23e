package sqldb

import (
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/servicetest"
)

func TestTakePoolSize(t *testing.T) {
	tests := []struct {
		in, wantDSN string
		wantN       int
		wantErr     bool
	}{
		{"postgres://u@h:5432/d?sslmode=disable", "postgres://u@h:5432/d?sslmode=disable", pgPoolSize, false},
		{"postgres://u@h:5432/d?sslmode=disable&pool_max_conns=40", "postgres://u@h:5432/d?sslmode=disable", 40, false},
		{"postgres://u:p@h/d?pool_max_conns=1", "postgres://u:p@h/d", 1, false},
		{"postgres://u@h/d?pool_max_conns=0", "", 0, true},
		{"postgres://u@h/d?pool_max_conns=-3", "", 0, true},
		{"postgres://u@h/d?pool_max_conns=many", "", 0, true},
		{"postgres://u@h/d?pool_max_conns=", "", 0, true},
	}
	for _, tt := range tests {
		dsn, n, err := takePoolSize(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("takePoolSize(%q) = %q, %d; want an error", tt.in, dsn, n)
			}
			continue
		}
		if err != nil || dsn != tt.wantDSN || n != tt.wantN {
			t.Errorf("takePoolSize(%q) = %q, %d, %v; want %q, %d", tt.in, dsn, n, err, tt.wantDSN, tt.wantN)
		}
	}
}

// pool_max_conns in the database URL sizes the pool and is not passed on
// to the server, which would refuse it as an unknown setting.
func TestPostgres_PoolMaxConnsFromURL(t *testing.T) {
	pg := servicetest.StartPostgres(t)
	url := pg.Database(t)
	for _, tt := range []struct {
		suffix string
		want   int
	}{{"", pgPoolSize}, {"&pool_max_conns=3", 3}, {"&pool_max_conns=64", 64}} {
		db, err := Open(t.Context(), url+tt.suffix, nil)
		if err != nil {
			t.Fatalf("Open(%q): %v", url+tt.suffix, err)
		}
		got := db.write.Stats().MaxOpenConnections
		db.Close()
		if got != tt.want {
			t.Errorf("Open(%q): pool of %d connections; want %d", url+tt.suffix, got, tt.want)
		}
	}
	_, err := Open(t.Context(), strings.Replace(url, pg.User+"@", pg.User+":s3cret@", 1)+"&pool_max_conns=zero", nil)
	if err == nil || !strings.Contains(err.Error(), "pool_max_conns") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open with pool_max_conns=zero: %v; want an error naming pool_max_conns, without the password", err)
	}
}

// Without default_query_exec_mode in the URL nothing is prepared on the
// server (PgBouncer in transaction mode would lose it); with it, pgx's
// mode is used, so an operator on a direct connection can let pgx cache
// statements and spare the server a parse and plan per query.
func TestPostgres_ExecModeFromURL(t *testing.T) {
	url := servicetest.StartPostgres(t).Database(t) + "&pool_max_conns=1"
	for _, tt := range []struct {
		suffix       string
		wantPrepared bool
	}{{"", false}, {"&default_query_exec_mode=exec", false}, {"&default_query_exec_mode=cache_statement", true}} {
		db, err := Open(t.Context(), url+tt.suffix, nil)
		if err != nil {
			t.Fatalf("Open(%q): %v", url+tt.suffix, err)
		}
		if err := db.PutManifest(t.Context(), testManifest("app", "0"), []string{"latest"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ResolveTag(t.Context(), "app", "latest"); err != nil {
			t.Fatal(err)
		}
		// One connection in the pool: the one the lookup ran on.
		var n int
		err = db.read.QueryRowContext(t.Context(),
			`SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%t.digest FROM tags%'`).Scan(&n)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := n > 0; got != tt.wantPrepared {
			t.Errorf("Open(%q): tag lookup prepared on the server = %v, want %v", url+tt.suffix, got, tt.wantPrepared)
		}
	}
}
