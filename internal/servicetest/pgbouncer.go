package servicetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/throwaway"
)

// PgBouncerPoolSize is the number of server connections the bouncer keeps
// per database and user: far fewer than a wharf pool opens, so that client
// connections really share server connections, one transaction at a time.
const PgBouncerPoolSize = 4

// PgBouncer is a PgBouncer in transaction mode in front of the test
// process's PostgreSQL cluster.
type PgBouncer struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	pg   *Postgres
}

// StartPgBouncer starts PgBouncer (pool_mode = transaction) in front of
// the test process's PostgreSQL cluster and stops it when the test ends.
// The binary comes from $WHARF_PGBOUNCER, else PATH, else /usr/sbin.
func StartPgBouncer(t testing.TB) *PgBouncer {
	t.Helper()
	bin := os.Getenv("WHARF_PGBOUNCER")
	if bin == "" {
		bin = "pgbouncer"
		if _, err := exec.LookPath(bin); err != nil {
			bin = "/usr/sbin/pgbouncer" // Debian's, off a non-root PATH
		}
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		missing(t, "PgBouncer", "apt-get install -y pgbouncer: "+err.Error())
	}
	pg := StartPostgres(t)
	// PgBouncer refuses to run as root; -u makes it switch to the user
	// that owns the cluster once it has read its configuration.
	var asUser []string
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			missing(t, "PgBouncer", "no postgres user to run it as: "+err.Error())
		}
		asUser = []string{"-u", "postgres"}
	}
	// Not t.TempDir: its parents are private to root, and the bouncer
	// reads its user list again after switching users.
	dir, err := os.MkdirTemp("", "wharf-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr, err := throwaway.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(addr, ":")
	pgHost, pgPort, _ := strings.Cut(pg.Addr, ":")
	users := filepath.Join(dir, "userlist.txt")
	// The cluster trusts its superuser; trust here too, but PgBouncer
	// still wants the user listed.
	if err := os.WriteFile(users, []byte(fmt.Sprintf("%q \"\"\n", pg.User)), 0o644); err != nil {
		t.Fatal(err)
	}
	// `*`: every database name the client asks for goes to the same
	// database on the cluster, so tests can make databases directly and
	// reach them through the bouncer. server_reset_query is empty, as
	// transaction mode wants: no session state may survive a transaction.
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = %s
listen_port = %s
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 2000
max_db_connections = %d
server_reset_query =
ignore_startup_parameters = extra_float_digits
`, pgHost, pgPort, host, port, users, PgBouncerPoolSize, PgBouncerPoolSize)
	conf := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(conf, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(path, append(asUser, conf)...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start PgBouncer: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	if err := throwaway.WaitListening(context.Background(), addr, exited); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("%w: %v", err, waitErr)
		default:
		}
		t.Fatalf("PgBouncer on %s %v\n%s", addr, err, logs.String())
	}
	return &PgBouncer{Addr: addr, pg: pg}
}

// Database creates a new empty database on the cluster (dropped when the
// test ends) and returns its URL through the bouncer.
func (b *PgBouncer) Database(t testing.TB) string {
	t.Helper()
	direct := b.pg.Database(t)
	return strings.Replace(direct, "@"+b.pg.Addr+"/", "@"+b.Addr+"/", 1)
}

// DatabaseFrom is Postgres.DatabaseFrom through the bouncer: the template
// is prepared over a direct connection.
func (b *PgBouncer) DatabaseFrom(t testing.TB, key string, prepare func(ctx context.Context, url string) error) string {
	t.Helper()
	direct := b.pg.DatabaseFrom(t, key, prepare)
	return strings.Replace(direct, "@"+b.pg.Addr+"/", "@"+b.Addr+"/", 1)
}

// String describes b for test logs.
func (b *PgBouncer) String() string {
	return "PgBouncer (transaction mode) at " + b.Addr + " in front of " + b.pg.String()
}
