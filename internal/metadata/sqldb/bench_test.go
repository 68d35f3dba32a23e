package sqldb

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
)

// benchTags fills db with 20 repositories of 50 tags each and returns a
// function naming the i-th (repository, tag) pair, cycling through them.
func benchTags(b *testing.B, db *DB) func(i uint64) (string, string) {
	const repos, tags = 20, 50
	for r := range repos {
		repo := fmt.Sprintf("bench/repo%02d", r)
		for i := range tags {
			m := testManifest(repo, fmt.Sprint(r, "/", i))
			if err := db.PutManifest(b.Context(), m, []string{fmt.Sprint("v", i)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return func(i uint64) (string, string) {
		return fmt.Sprintf("bench/repo%02d", i%repos), fmt.Sprint("v", (i/repos)%tags)
	}
}

// BenchmarkGetTaggedManifestQuery measures GetTaggedManifest, the full-row
// query (tags ⋈ repositories ⋈ manifests, the manifest's bytes included)
// with readers on every CPU. It is not memoized. On SQLite the registry's
// pull path does not call it (it asks ResolveTag and takes the bytes from
// its manifest cache, see BenchmarkResolveTag*); the web UI's manifest
// pages and stores without ResolveTag do.
func BenchmarkGetTaggedManifestQuery(b *testing.B) {
	db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
	name := benchTags(b, db)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			repo, tag := name(next.Add(1))
			if _, err := db.GetTaggedManifest(b.Context(), repo, tag); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkResolveTagMemoHit measures the tag lookup of a manifest GET or
// HEAD by tag when nothing has committed since the same lookup last ran:
// the answer comes from the WAL-index memo (memo.go), no SQL runs. That is
// the steady state of a registry being pulled from and not pushed to. The
// 1,000 tags are all looked up once before the clock starts.
func BenchmarkResolveTagMemoHit(b *testing.B) {
	db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
	name := benchTags(b, db)
	for i := range uint64(1000) {
		repo, tag := name(i)
		if _, err := db.ResolveTag(b.Context(), repo, tag); err != nil {
			b.Fatal(err)
		}
	}
	if g := db.point.memo.gen.Load(); g == nil || g.size.Load() < 1000 {
		b.Fatal("the warm-up lookups were not memoized; this would not measure memo hits")
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			repo, tag := name(next.Add(1))
			if _, err := db.ResolveTag(b.Context(), repo, tag); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkResolveTagAfterCommit measures the same lookup right after a
// commit (a tag pushed to another repository, outside the timed part):
// the WAL index has moved on, so the memo cannot answer and the SQL query
// runs. That is the cost on a registry that is being pushed to.
func BenchmarkResolveTagAfterCommit(b *testing.B) {
	db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
	name := benchTags(b, db)
	other := testManifest("bench/other", "pushed")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := db.PutManifest(b.Context(), other, []string{fmt.Sprint("t", i)}); err != nil {
			b.Fatal(err)
		}
		ver, known := db.point.wal.Load().version()
		if g := db.point.memo.gen.Load(); !known || g != nil && g.ver == ver {
			b.Fatal("the commit did not move the WAL version; this would measure a memo hit")
		}
		repo, tag := name(uint64(i))
		b.StartTimer()
		if _, err := db.ResolveTag(b.Context(), repo, tag); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutManifest measures a manifest push: a new manifest with two
// blob references, moving the "latest" tag to it.
func BenchmarkPutManifest(b *testing.B) {
	db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := testManifest("bench/repo", fmt.Sprint(i))
		if err := db.PutManifest(b.Context(), m, []string{"latest"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListTags lists a repository of 10,000 tags whole, as a
// `tags/list` without n does.
func BenchmarkListTags(b *testing.B) {
	db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
	m := testManifest("bench/many", "one")
	tags := make([]string, 10000)
	for i := range tags {
		tags[i] = fmt.Sprintf("v%05d", i)
	}
	if err := db.PutManifest(b.Context(), m, tags); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := db.ListTags(b.Context(), "bench/many", "", 0)
		if err != nil || len(got) != len(tags) {
			b.Fatalf("ListTags: %d tags, %v", len(got), err)
		}
	}
}

// BenchmarkResolveTagPostgres measures the tag lookup of a manifest GET by
// tag on PostgreSQL with 64 lookups at a time (the bench's 64
// connections): "hot" asks for one tag, as clients pulling one image do,
// "spread" cycles through 1,000 tags. There is no memo on PostgreSQL, so
// every lookup needs a query sent after it was asked; lookups of one key
// that wait together share one (coalesce.go). It reports the queries sent
// per lookup: 1 would be a round trip each.
func BenchmarkResolveTagPostgres(b *testing.B) {
	db := openPostgres(b)
	name := benchTags(b, db)
	for _, bc := range []struct {
		name string
		pick func(i uint64) (string, string)
	}{
		{"hot", func(uint64) (string, string) { return name(0) }},
		{"spread", name},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var next atomic.Uint64
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			before := db.lookups.sent.Load()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					repo, tag := bc.pick(next.Add(1))
					if _, err := db.ResolveTag(b.Context(), repo, tag); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(db.lookups.sent.Load()-before)/float64(b.N), "queries/lookup")
		})
	}
}
