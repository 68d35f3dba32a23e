package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata/sqldb"
)

// `wharf gc` takes the lease serve's collections take: while a replica
// holds it, gc stops with a message and collects nothing; once released,
// gc runs and its run is recorded beside serve's.
func TestGC_HonoursTheLeaseOfServesCollection(t *testing.T) {
	dir := t.TempDir()
	db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(dir, "wharf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	ok, err := db.AcquireJob(t.Context(), "gc", "replica-a/1234", now, now.Add(time.Minute), now.Add(time.Nanosecond))
	if err != nil || !ok {
		t.Fatalf("AcquireJob = %v, %v", ok, err)
	}

	_, stderr, err := runRootIn(t.Context(), "", "gc", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "another garbage collection is under way") {
		t.Fatalf("gc while a replica holds the lease: err = %v (stderr %q); want the lease named", err, stderr)
	}
	if runs, _, err := db.ListRuns(t.Context(), "gc", 0, 10); err != nil || len(runs) != 0 {
		t.Fatalf("runs recorded while refused = %+v, %v; want none", runs, err)
	}

	if err := db.ReleaseJob(t.Context(), "gc", "replica-a/1234"); err != nil {
		t.Fatal(err)
	}
	out, err := runRoot(t.Context(), "gc", "--data-dir", dir)
	if err != nil {
		t.Fatalf("gc once the lease is free: %v\n%s", err, out)
	}
	runs, _, err := db.ListRuns(t.Context(), "gc", 0, 10)
	if err != nil || len(runs) != 1 || runs[0].Trigger != "cli" || runs[0].Outcome != "ok" {
		t.Fatalf("runs = %+v, %v; want one ok run triggered by cli", runs, err)
	}
}
