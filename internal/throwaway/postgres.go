package throwaway

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx", for CREATE DATABASE
)

// pgBinDir is where Debian's postgresql-15 keeps initdb and pg_ctl (they
// are not on PATH); $WHARF_PG_BINDIR overrides it.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// PostgresConfig says how to start a cluster.
type PostgresConfig struct {
	// Parent is the directory the cluster's own directory is made in
	// (os.TempDir() when empty). As root the cluster runs as the postgres
	// user, whom Parent and its ancestors must let through.
	Parent string
	// Durable keeps PostgreSQL's crash safety (fsync, synchronous commit,
	// full-page writes), as a benchmark must; tests, whose cluster is never
	// trusted after a crash, turn it off to run faster.
	Durable bool
}

// Postgres is a running PostgreSQL cluster.
type Postgres struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// User may connect without a password (trust authentication).
	User string

	dir      string   // removed by Stop
	data     string   // the cluster's data directory
	stopArgs []string // pg_ctl stop, as the cluster's owner
}

// StartPostgres initialises and starts a cluster. It stops when this
// process exits, however it exits (a watcher process started beside it
// sees to that), or earlier on Stop. A missing PostgreSQL is an error
// wrapping ErrNotInstalled.
func StartPostgres(cfg PostgresConfig) (*Postgres, error) {
	bin := os.Getenv("WHARF_PG_BINDIR")
	if bin == "" {
		bin = pgBinDir
	}
	initdb, pgctl := filepath.Join(bin, "initdb"), filepath.Join(bin, "pg_ctl")
	for _, p := range []string{initdb, pgctl} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("PostgreSQL 15 is %w (apt-get install -y postgresql-15): %v", ErrNotInstalled, err)
		}
	}
	// PostgreSQL refuses to run as root: as root the cluster belongs to
	// the postgres user, whom the directory must let in.
	var asUser []string
	owner := ""
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("PostgreSQL 15 is %w (no postgres user: %v)", ErrNotInstalled, err)
		}
		asUser, owner = []string{"runuser", "-u", "postgres", "--"}, "postgres"
	}
	dir, err := os.MkdirTemp(cfg.Parent, "wharf-pg-")
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
	initArgs := []string{initdb, "-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C"}
	if !cfg.Durable {
		initArgs = append(initArgs, "--no-sync")
	}
	if out, err := command(initArgs...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	addr, err := FreeLoopbackAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	opts := "-c listen_addresses=127.0.0.1 -p " + port + " -k " + pgdir + " -c max_connections=300"
	if !cfg.Durable {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	log := filepath.Join(pgdir, "log")
	if out, err := command(pgctl, "-D", data, "-l", log, "-w", "-t", "60", "start", "-o", opts).CombinedOutput(); err != nil {
		logs, _ := os.ReadFile(log)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, logs)
	}
	stopArgs := append(append([]string{}, asUser...), pgctl, "-D", data, "-m", "immediate", "-w", "stop")
	// The watcher outlives this process by design: it waits for it to
	// exit, then stops the cluster and removes its files. Polling once a
	// second is how a shell waits for a process that is not its child.
	watch := fmt.Sprintf("while kill -0 %d 2>/dev/null && [ -d %s ]; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s",
		os.Getpid(), data, strings.Join(stopArgs, " "), dir)
	w := exec.Command("sh", "-c", watch)
	if err := w.Start(); err != nil {
		_ = command(pgctl, "-D", data, "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the cluster's watcher: %w", err)
	}
	go func() { _ = w.Wait() }()
	return &Postgres{Addr: "127.0.0.1:" + port, User: superuser, dir: dir, data: data, stopArgs: stopArgs}, nil
}

// URL is the connection URL of database name.
func (p *Postgres) URL(name string) string {
	return "postgres://" + p.User + "@" + p.Addr + "/" + name + "?sslmode=disable"
}

// CreateDatabase creates the empty database name and returns its URL. Its
// collation is natural-language (ICU's en-US), as production databases
// often have: where wharf needs byte order it must ask for it, and a test
// on a C-collated database would not notice if it did not.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := p.admin(ctx, "CREATE DATABASE "+name+
		" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// CreateDatabaseFrom creates database name as a copy of database template,
// which nobody may be connected to, and returns its URL.
func (p *Postgres) CreateDatabaseFrom(ctx context.Context, name, template string) (string, error) {
	if err := p.admin(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template+" STRATEGY FILE_COPY"); err != nil {
		return "", fmt.Errorf("create database %s from %s: %w", name, template, err)
	}
	return p.URL(name), nil
}

// DropDatabase drops database name, closing the connections left to it.
func (p *Postgres) DropDatabase(ctx context.Context, name string) error {
	return p.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

func (p *Postgres) admin(ctx context.Context, stmt string) error {
	db, err := sql.Open("pgx", p.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// Pid is the postmaster's process id (its backends are its children).
func (p *Postgres) Pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// Stop stops the cluster at once and removes its files.
func (p *Postgres) Stop() error {
	out, err := exec.Command(p.stopArgs[0], p.stopArgs[1:]...).CombinedOutput()
	// The watcher also ends now that the data directory is gone.
	if rmErr := os.RemoveAll(p.dir); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// String describes p for logs.
func (p *Postgres) String() string { return "PostgreSQL at " + p.Addr }
