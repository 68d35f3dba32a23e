package servicetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx", for CREATE DATABASE
)

// Postgres is a running PostgreSQL cluster that tests make databases in.
type Postgres struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// User may connect without a password (trust authentication).
	User string
}

// One cluster serves every test of a test process: initdb costs about a
// second, a database a few milliseconds.
var (
	pgOnce    sync.Once
	pgCluster *Postgres
	pgErr     error
	pgMissing string
)

// pgBinDir is where Debian's postgresql-15 keeps initdb and pg_ctl (they
// are not on PATH); $WHARF_PG_BINDIR overrides it.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// StartPostgres returns the test process's PostgreSQL cluster, starting it
// on first use. It stops when the test process exits, however it exits: a
// watcher process started beside it stops it then.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	pgOnce.Do(func() { pgCluster, pgErr = startPostgres() })
	if pgMissing != "" {
		missing(t, "PostgreSQL 15", pgMissing)
	}
	if pgErr != nil {
		t.Fatalf("start PostgreSQL: %v", pgErr)
	}
	return pgCluster
}

func startPostgres() (*Postgres, error) {
	bin := os.Getenv("WHARF_PG_BINDIR")
	if bin == "" {
		bin = pgBinDir
	}
	initdb, pgctl := filepath.Join(bin, "initdb"), filepath.Join(bin, "pg_ctl")
	for _, p := range []string{initdb, pgctl} {
		if _, err := os.Stat(p); err != nil {
			pgMissing = "apt-get install -y postgresql-15: " + err.Error()
			return nil, nil
		}
	}
	// PostgreSQL refuses to run as root: as root the cluster belongs to
	// the postgres user, whom the directory must let in.
	var asUser []string
	owner := ""
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			pgMissing = "no postgres user: " + err.Error()
			return nil, nil
		}
		asUser, owner = []string{"runuser", "-u", "postgres", "--"}, "postgres"
	}
	dir, err := os.MkdirTemp("", "wharf-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp's 0700 keeps postgres out
		return nil, err
	}
	pgdir := filepath.Join(dir, "pg")
	if err := os.Mkdir(pgdir, 0o755); err != nil {
		return nil, err
	}
	if owner != "" {
		if out, err := exec.Command("chown", owner+":", pgdir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown %s: %v: %s", pgdir, err, out)
		}
	}
	data := filepath.Join(pgdir, "data")
	command := func(args ...string) *exec.Cmd {
		all := append(append([]string{}, asUser...), args...)
		cmd := exec.Command(all[0], all[1:]...)
		cmd.Dir = pgdir
		return cmd
	}
	const superuser = "wharf"
	if out, err := command(initdb, "-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	addr := freeLoopbackAddr()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	// fsync off: a test cluster is thrown away, never trusted after a crash.
	opts := "-c listen_addresses=127.0.0.1 -p " + port + " -k " + pgdir +
		" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
	log := filepath.Join(pgdir, "log")
	if out, err := command(pgctl, "-D", data, "-l", log, "-w", "-t", "60", "start", "-o", opts).CombinedOutput(); err != nil {
		logs, _ := os.ReadFile(log)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, logs)
	}
	// The watcher outlives this process by design: it waits for it to
	// exit, then stops the cluster and removes its files. Polling once a
	// second is how a shell waits for a process that is not its child.
	stop := strings.Join(append(append([]string{}, asUser...), pgctl, "-D", data, "-m", "immediate", "-w", "stop"), " ")
	watch := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s",
		os.Getpid(), stop, dir)
	w := exec.Command("sh", "-c", watch)
	w.Stdin, w.Stdout, w.Stderr = nil, nil, nil
	if err := w.Start(); err != nil {
		_ = command(pgctl, "-D", data, "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the cluster's watcher: %w", err)
	}
	go func() { _ = w.Wait() }()
	return &Postgres{Addr: "127.0.0.1:" + port, User: superuser}, nil
}

func freeLoopbackAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// URL is the connection URL of database name.
func (p *Postgres) URL(name string) string {
	return "postgres://" + p.User + "@" + p.Addr + "/" + name + "?sslmode=disable"
}

// Database creates a new empty database and returns its URL; it is
// dropped when the test ends.
func (p *Postgres) Database(t testing.TB) string {
	t.Helper()
	name := "t_" + strings.ToLower(rand.Text()[:16])
	admin, err := sql.Open("pgx", p.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A natural-language collation (ICU's en-US), as production databases
	// often have: where wharf needs byte order it must ask for it, and a
	// test on a C-collated database would not notice if it did not.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+
		" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", p.URL("postgres"))
		if err != nil {
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// WITH (FORCE): a connection the test leaked must not keep it.
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return p.URL(name)
}

// String describes p for test logs.
func (p *Postgres) String() string { return "PostgreSQL at " + p.Addr }
