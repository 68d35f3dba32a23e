package throwaway

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// needs skips a test of a server that is not installed, unless `make
// test` (WHARF_TEST_SERVICES=require) asked for every server.
func needs(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("WHARF_TEST_SERVICES") != "require" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestStartPostgres_MissingServerIsErrNotInstalled(t *testing.T) {
	t.Setenv("WHARF_PG_BINDIR", t.TempDir())
	_, err := StartPostgres(PostgresConfig{Parent: t.TempDir()})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install -y postgresql-15") {
		t.Fatalf("StartPostgres without initdb: %v, want ErrNotInstalled naming the package", err)
	}
}

func TestVersitygwPath_MissingBinaryIsErrNotInstalled(t *testing.T) {
	t.Setenv("WHARF_VERSITYGW", filepath.Join(t.TempDir(), "versitygw"))
	_, err := VersitygwPath()
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "setup.sh") {
		t.Fatalf("VersitygwPath of a missing binary: %v, want ErrNotInstalled naming setup.sh", err)
	}
}

// A durable cluster (the benchmarks') serves a database, and Stop ends it
// and removes its files rather than leaving them to the watcher.
func TestPostgres_DurableClusterServesAndStopRemovesIt(t *testing.T) {
	parent := t.TempDir()
	for _, d := range []string{filepath.Dir(parent), parent} { // as root, postgres must get through
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := StartPostgres(PostgresConfig{Parent: parent, Durable: true})
	needs(t, err)
	ctx := context.Background()
	url, err := p.CreateDatabase(ctx, "bench")
	if err != nil {
		p.Stop()
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if pid, err := p.Pid(); err != nil || pid <= 1 {
		t.Errorf("Pid: %d, %v", pid, err)
	}
	var fsync string
	if err := db.QueryRowContext(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
		t.Errorf("SHOW fsync: %q, %v; want on in a durable cluster", fsync, err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory after Stop: %v, want it gone", err)
	}
	db.SetMaxIdleConns(0)
	if err := db.PingContext(ctx); err == nil {
		t.Error("the database still answers after Stop")
	}
}

func TestS3_ServesBucketsAndStops(t *testing.T) {
	s, err := StartS3(context.Background(), t.TempDir())
	needs(t, err)
	if err := s.MakeBucket("one"); err != nil {
		t.Fatal(err)
	}
	if got := s.URL("one", "p"); !strings.HasPrefix(got, "s3://one/p?endpoint="+s.Endpoint) {
		t.Errorf("URL: %s", got)
	}
	s.Stop()
	select {
	case <-s.exited:
	default:
		t.Error("versitygw still runs after Stop")
	}
}
