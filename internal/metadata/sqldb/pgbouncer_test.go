package sqldb

import (
	"context"
	"sync"
	"testing"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/auth/authtest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/metadatatest"
	"github.com/wharf/wharf/internal/servicetest"
)

// The suites below run with the database behind PgBouncer in transaction
// mode, where consecutive statements of one client connection may run on
// different server connections: a named prepared statement, a SET or a
// session-scoped lock that wharf relied on would break them.

// openBounced opens a new migrated database through bouncer, closing it
// when the test ends. A suite's subtests share their parent's bouncer: a
// subtest's own would cost a process start each.
func openBounced(t *testing.T, bouncer *servicetest.PgBouncer, opts ...Option) *DB {
	t.Helper()
	url := bouncer.DatabaseFrom(t, "migrated", migrated)
	db, err := Open(t.Context(), url, nil, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPgBouncer_Contract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.Run(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_CatalogContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunCatalog(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_CollectorContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunCollector(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_BulkContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunBulk(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_PolicyContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunPolicies(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_TagPlannerContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunTagPlanner(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_ReplicationContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunReplication(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_WebhookContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunWebhooks(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_JobsContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunJobs(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_TagHistoryContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunTagHistory(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_LineageContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunLineage(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_AuthContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	authtest.Run(t, func(t *testing.T) auth.Store { return openBounced(t, b) })
}

func TestPgBouncer_LoginFailuresContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	authtest.RunFailures(t, func(t *testing.T) auth.FailureStore { return openBounced(t, b) })
}

// Replicas that start together through one bouncer each apply the
// migrations or find them applied: the advisory lock is transaction-
// scoped, so it holds on whichever server connection the transaction got.
func TestPgBouncer_ParallelOpensMigrateOnce(t *testing.T) {
	url := servicetest.StartPgBouncer(t).Database(t)
	const replicas = 8 // twice the bouncer's server connections
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

func TestPgBouncer_UsageContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunUsage(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}

func TestPgBouncer_RetentionContract(t *testing.T) {
	b := servicetest.StartPgBouncer(t)
	metadatatest.RunRetention(t, func(t *testing.T) metadata.Store { return openBounced(t, b) })
}
