package sqldb

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// migrationWith returns the migration (in db's dialect) whose text holds
// marker: found by content, as versions are renumbered when branches merge.
func migrationWith(t *testing.T, db *DB, marker string) string {
	t.Helper()
	list := migrations
	if db.postgres {
		list = pgMigrations
	}
	for _, m := range list {
		if strings.Contains(m, marker) {
			return m
		}
	}
	t.Fatalf("no migration holds %q", marker)
	return ""
}

// testRetentionRunsMigrate puts db back as it was before retention's runs
// joined job_runs, with two runs recorded, applies that migration, and
// checks that both runs are job runs of kind retention that keep every
// field, and that retention_runs is gone.
func testRetentionRunsMigrate(t *testing.T, db *DB) {
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.write.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.60s…: %v", q, err)
		}
	}
	exec(migrationWith(t, db, "CREATE TABLE retention_runs ("))
	exec(`ALTER TABLE job_runs DROP COLUMN details`)
	t0 := time.Unix(1_700_000_000, 0)
	insert := `INSERT INTO retention_runs (started_at, finished_at, trigger_kind, actor, scope, repositories,
		deleted_tags, deleted_manifests, failures, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	exec(insert, nanos(t0), nanos(t0.Add(time.Second)), "manual", "alice", "team/*", 2, 3, 1, 0, []byte(`[{"repository":"team/app"}]`))
	exec(insert, nanos(t0.Add(time.Hour)), nanos(t0.Add(time.Hour+time.Second)), "schedule", "", "*", 5, 0, 0, 2, []byte(`[]`))
	exec(migrationWith(t, db, "INSERT INTO job_runs (kind"))

	runs, err := db.ListRetentionRuns(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("retention runs after the migration = %+v, want 2", runs)
	}
	sched, manual := runs[0], runs[1]
	if manual.Trigger != "manual" || manual.Actor != "alice" || manual.Scope != "team/*" || manual.Repositories != 2 ||
		manual.DeletedTags != 3 || manual.DeletedManifests != 1 || manual.Failures != 0 ||
		string(manual.Report) != `[{"repository":"team/app"}]` || !manual.StartedAt.Equal(t0) || !manual.FinishedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("manual run = %+v", manual)
	}
	if sched.Trigger != "schedule" || sched.Scope != "*" || sched.Repositories != 5 || sched.Failures != 2 || string(sched.Report) != `[]` {
		t.Errorf("scheduled run = %+v", sched)
	}
	jobs, total, err := db.ListRuns(ctx, "retention", 0, 10)
	if err != nil || total != 2 {
		t.Fatalf("ListRuns(retention) = %d runs, %v", total, err)
	}
	if jobs[0].Outcome != metadata.RunFailed || jobs[0].Error != "2 deletions failed" || jobs[1].Outcome != metadata.RunOK || jobs[1].Manifests != 1 {
		t.Errorf("job runs = %+v", jobs)
	}
	var n int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM retention_runs`).Scan(&n); err == nil {
		t.Error("retention_runs is still there")
	}
}

func TestSQLite_RetentionRunsMoveIntoJobRuns(t *testing.T) {
	testRetentionRunsMigrate(t, openSQLite(t, filepath.Join(t.TempDir(), "m.db")))
}

func TestPostgres_RetentionRunsMoveIntoJobRuns(t *testing.T) {
	testRetentionRunsMigrate(t, openPostgres(t))
}
