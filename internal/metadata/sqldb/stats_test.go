package sqldb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// recount is what Stats answered before it kept totals: every link,
// grouped by digest. The kept totals must always equal it.
const recount = `SELECT COUNT(*), COALESCE(SUM(size), 0)
	FROM (SELECT digest, MAX(size) AS size FROM repo_blobs GROUP BY digest) AS b`

func wantStatsMatchRecount(t *testing.T, db *DB, step string) {
	t.Helper()
	var want metadata.Stats
	if err := db.read.QueryRowContext(t.Context(), recount).Scan(&want.Blobs, &want.Bytes); err != nil {
		t.Fatal(err)
	}
	got, err := db.Stats(t.Context())
	if err != nil || got != want {
		t.Fatalf("after %s: Stats = %+v, %v; a recount says %+v", step, got, err, want)
	}
	links := func(q string) []string {
		rows, err := db.read.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var d string
			var n int64
			if err := rows.Scan(&d, &n); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(d, " ", n))
		}
		return out
	}
	// The usage kept per repository and namespace must be what a recount
	// from the links finds: one that corrects nothing.
	if fixed, err := db.RecountUsage(t.Context()); err != nil || fixed != 0 {
		t.Fatalf("after %s: RecountUsage corrected %d usages (%v); want none", step, fixed, err)
	}
	kept := links(`SELECT digest, links FROM linked_blobs ORDER BY digest`)
	counted := links(`SELECT digest, COUNT(*) FROM repo_blobs GROUP BY digest ORDER BY digest`)
	if !slices.Equal(kept, counted) {
		t.Fatalf("after %s: links per digest kept = %v; counted = %v", step, kept, counted)
	}
}

// TestStats_MatchRecountAfterMixedWrites runs a long random mix of every
// write that adds or removes blob links: first and repeated links, links
// of one digest in several repositories, unlinks, manifests that keep
// links from pruning, manifest deletes, pruning and repository deletes.
func TestStats_MatchRecountAfterMixedWrites(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	rng := rand.New(rand.NewPCG(1, 11))
	repos := []string{"a", "b", "c/d", "e", "c/f/g"}
	digests := make([]digest.Digest, 12)
	for i := range digests {
		digests[i] = digest.FromString(fmt.Sprint("blob ", i))
	}
	size := func(d digest.Digest) int64 { return int64(slices.Index(digests, d))*100 + 1 }
	var manifests []*metadata.Manifest
	ops := map[string]int{}
	for step := range 600 {
		repo, d := repos[rng.IntN(len(repos))], digests[rng.IntN(len(digests))]
		var op string
		var err error
		switch r := rng.IntN(100); {
		case r < 45:
			op, err = "link", db.LinkBlob(ctx, repo, d, size(d))
		case r < 70:
			op, err = "unlink", db.UnlinkBlob(ctx, repo, d)
		case r < 82:
			op = "manifest"
			m := testManifest(repo, fmt.Sprint(step))
			m.Blobs = []digest.Digest{d, digests[rng.IntN(len(digests))]}
			manifests = append(manifests, m)
			err = db.PutManifest(ctx, m, []string{"v" + fmt.Sprint(step%3)})
		case r < 88 && len(manifests) > 0:
			op = "delete manifest"
			m := manifests[rng.IntN(len(manifests))]
			err = db.DeleteManifest(ctx, m.Repo, m.Digest)
		case r < 95:
			op = "prune"
			_, err = db.PruneBlobLinks(ctx, time.Now().Add(time.Hour), false)
		default:
			op, err = "delete repository", db.DeleteRepository(ctx, repo)
		}
		if err != nil && !errors.Is(err, metadata.ErrNotFound) {
			t.Fatalf("step %d, %s: %v", step, op, err)
		}
		if err == nil {
			ops[op]++
		}
		wantStatsMatchRecount(t, db, fmt.Sprintf("step %d (%s %s %s)", step, op, repo, d.Encoded()[:8]))
	}
	// Each kind of write must have happened, or the test proves less than
	// it says.
	for _, op := range []string{"link", "unlink", "manifest", "delete manifest", "prune", "delete repository"} {
		if ops[op] == 0 {
			t.Errorf("no successful %s in the sequence", op)
		}
	}
	t.Logf("writes: %v", ops)
}

// TestStats_MigrationCountsExistingLinks: a database that had links before
// the totals existed starts with totals that match them.
func TestStats_MigrationCountsExistingLinks(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "metadata.db")
	db := openSQLite(t, path)
	shared, own := digest.FromString("shared"), digest.FromString("own")
	for _, repo := range []string{"a", "b", "c"} {
		if err := db.LinkBlob(ctx, repo, shared, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.LinkBlob(ctx, "b", own, 7); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"ns/x", "ns/y/z"} {
		if err := db.LinkBlob(ctx, repo, shared, 100); err != nil {
			t.Fatal(err)
		}
	}
	// Back to the schema before the totals (and what came after), links
	// and all.
	if _, err := db.write.ExecContext(ctx, `DROP TABLE linked_blobs; DROP TABLE blob_totals;
		ALTER TABLE uploads DROP COLUMN store_state; DROP TABLE blobs;
		DROP TABLE login_failures;
		ALTER TABLE uploads DROP COLUMN writer;
		ALTER TABLE uploads DROP COLUMN lease_until;
		ALTER TABLE uploads DROP COLUMN content;
		DROP TABLE derived_tags;
		DROP INDEX tags_base; ALTER TABLE tags DROP COLUMN base_repo; ALTER TABLE tags DROP COLUMN base_digest;
		ALTER TABLE tags DROP COLUMN repo_name;
		DROP TABLE policies; DROP TABLE policy_version; DROP TABLE image_lineage;
		DROP TABLE webhook_deliveries; DROP TABLE webhooks;
		DROP INDEX manifest_refs_parents; CREATE INDEX manifest_refs_child ON manifest_refs(repo_id, child);
		DROP TABLE job_leases; DROP TABLE job_runs;
		DROP TABLE tag_history;
		DROP TABLE repo_usage; DROP TABLE namespace_blobs; DROP TABLE namespace_usage;
		DROP TABLE replication_tasks; DROP TABLE replication_rules;
		DROP TABLE ended_uploads;
		DELETE FROM schema_migrations WHERE version >= 5`); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path)
	if st, err := db.Stats(ctx); err != nil || st != (metadata.Stats{Blobs: 2, Bytes: 107}) {
		t.Fatalf("Stats after the migration = %+v, %v; want {Blobs:2 Bytes:107}", st, err)
	}
	for _, want := range []struct {
		got  func(context.Context, string) (metadata.Usage, error)
		name string
		want metadata.Usage
	}{
		{db.NamespaceUsage, "", metadata.Usage{Name: "", Blobs: 2, Bytes: 107}},
		{db.NamespaceUsage, "ns", metadata.Usage{Name: "ns", Blobs: 1, Bytes: 100}},
		{db.RepositoryUsage, "b", metadata.Usage{Name: "b", Blobs: 2, Bytes: 107}},
		{db.RepositoryUsage, "ns/y/z", metadata.Usage{Name: "ns/y/z", Blobs: 1, Bytes: 100}},
	} {
		if got, err := want.got(ctx, want.name); err != nil || got != want.want {
			t.Errorf("usage of %q after the migration = %+v, %v; want %+v", want.name, got, err, want.want)
		}
	}
	if err := db.UnlinkBlob(ctx, "b", own); err != nil {
		t.Fatal(err)
	}
	wantStatsMatchRecount(t, db, "unlinking a blob linked before the migration")
}

// TestStats_ReadsOneRow: a scrape reads the totals' row, never the links
// (whose number grows with what is stored).
func TestStats_ReadsOneRow(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	rows, err := db.read.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+statsQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) != 1 || !strings.HasPrefix(plan[0], "SEARCH blob_totals USING INTEGER PRIMARY KEY") {
		t.Errorf("Stats plan = %q; want one primary-key search of blob_totals", plan)
	}
}

// BenchmarkStats shows that a scrape's cost does not grow with the number
// of blobs stored: compare ns/op of the two sizes.
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprint("blobs=", n), func(b *testing.B) {
			db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
			// One transaction for the set-up: 10,000 commits would take
			// longer than the benchmark.
			err := db.inTx(b.Context(), func(tx *stmtTx) error {
				for i := range n {
					repo := fmt.Sprint("repo", i%50)
					if err := linkBlob(b.Context(), tx, repo, digest.FromString(fmt.Sprint(i)), int64(i)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.Stats(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
