package sqldb

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkGetTaggedManifest measures the hot read path (a manifest GET by
// tag) with readers on every CPU, over 20 repositories of 50 tags each.
func BenchmarkGetTaggedManifest(b *testing.B) {
	db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
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
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			repo, tag := fmt.Sprintf("bench/repo%02d", i%repos), fmt.Sprint("v", (i/repos)%tags)
			if _, err := db.GetTaggedManifest(b.Context(), repo, tag); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkResolveTag measures the lookup the pull path makes on every
// manifest GET or HEAD by tag (the bytes then come from a cache), over the
// same data as BenchmarkGetTaggedManifest.
func BenchmarkResolveTag(b *testing.B) {
	db := openSQLite(b, filepath.Join(b.TempDir(), "metadata.db"))
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
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			repo, tag := fmt.Sprintf("bench/repo%02d", i%repos), fmt.Sprint("v", (i/repos)%tags)
			if _, err := db.ResolveTag(b.Context(), repo, tag); err != nil {
				b.Error(err)
				return
			}
		}
	})
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
