package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// The scale of the lineage benchmarks: 10,000 golden images (100 golden
// repositories of 100) and 100,000 images in all, 10,000 of which (100
// repositories of 100 tags) are built on one golden image.
const (
	benchGoldenRepos   = 100
	benchGoldenPerRepo = 100
	benchApps          = 90_000
	benchAppsPerRepo   = 90
	benchUsedBy        = 10_000
)

// benchLayers names the layers of the benchmarks' images.
func benchLayers(prefix string, n int) []digest.Digest {
	out := make([]digest.Digest, n)
	for i := range out {
		out[i] = digest.FromString(fmt.Sprintf("%s/%d", prefix, i))
	}
	return out
}

// lineageRecord is what a push of an image of layers would record, built
// on base (nil: none).
func lineageRecord(repo string, layers []digest.Digest, golden bool, base *metadata.Record, baseLayers int) metadata.Record {
	chains := registry.LayerChains(layers)
	baseRepo, baseDigest, source := "", "", ""
	if base != nil {
		baseRepo, baseDigest, source = base.Key[0], base.Key[1], registry.SourceLayers
	}
	return metadata.Record{Key: []string{repo, ""}, Values: []any{chains[len(chains)-1], chains[0], int64(len(layers)), golden,
		baseRepo, baseDigest, "1.0", int64(baseLayers), source, ""}}
}

// seedLineage fills db through Bulk.Load (a push at a time would take
// minutes): the golden images, the images built on them and the tags.
func seedLineage(b *testing.B, db *sqldb.DB) {
	ctx := b.Context()
	var repos, manifests, refs, lineage, tags []metadata.Record
	add := func(repo, tag string, n int, l metadata.Record) metadata.Record {
		content := fmt.Sprintf(`{"schemaVersion":2,"seed":%q}`, fmt.Sprint(repo, "/", n))
		d := digest.FromString(content).String()
		manifests = append(manifests, metadata.Record{Key: []string{repo, d}, Values: []any{
			registry.MediaTypeOCIManifest, []byte(content), int64(len(content)), "application/vnd.oci.image.config.v1+json", "", "", int64(1)}})
		// A pushed image references its config and layers: lookups of an
		// image's parents must find them among these, as in a real store.
		for _, b := range benchLayers(d, 6) {
			refs = append(refs, metadata.Record{Key: []string{repo, d, "blob", b.String()}})
		}
		l.Key = []string{repo, d}
		lineage = append(lineage, l)
		if tag != "" {
			tags = append(tags, metadata.Record{Key: []string{repo, tag}, Values: []any{d, int64(1), "bench", int64(0)}})
		}
		return manifests[len(manifests)-1]
	}
	var golden []metadata.Record
	for r := range benchGoldenRepos {
		repo := fmt.Sprintf("golden/b%03d", r)
		repos = append(repos, metadata.Record{Key: []string{repo}, Values: []any{int64(1)}})
		for i := range benchGoldenPerRepo {
			layers := benchLayers(fmt.Sprintf("golden/%d/%d", r, i), 3)
			golden = append(golden, add(repo, fmt.Sprintf("1.%d", i), i, lineageRecord(repo, layers, true, nil, 0)))
		}
	}
	for i := range benchApps {
		repo := fmt.Sprintf("apps/a%04d", i/benchAppsPerRepo)
		if i%benchAppsPerRepo == 0 {
			repos = append(repos, metadata.Record{Key: []string{repo}, Values: []any{int64(1)}})
		}
		g := i % len(golden)
		if i < benchUsedBy {
			g = 0 // the used-by benchmark's base: golden/b000:1.0
		}
		layers := append(benchLayers(fmt.Sprintf("golden/%d/%d", g/benchGoldenPerRepo, g%benchGoldenPerRepo), 3), benchLayers(repo+fmt.Sprint(i), 2)...)
		tag := ""
		if i < benchUsedBy {
			tag = fmt.Sprintf("v%d", i)
		}
		add(repo, tag, i, lineageRecord(repo, layers, false, &golden[g], 3))
	}
	load := func(kind metadata.Kind, recs []metadata.Record) {
		for len(recs) > 0 {
			n := min(len(recs), 5000)
			if _, err := db.Load(ctx, kind, recs[:n], metadata.LoadKeep); err != nil {
				b.Fatalf("load %s: %v", kind, err)
			}
			recs = recs[n:]
		}
	}
	load(metadata.KindRepositories, repos)
	load(metadata.KindManifests, manifests)
	load(metadata.KindManifestRefs, refs)
	load(metadata.KindTags, tags)
	load(metadata.KindLineage, lineage)
}

func openLineageBench(b *testing.B) *sqldb.DB {
	log := slog.New(slog.DiscardHandler)
	path := filepath.Join(b.TempDir(), "wharf.db")
	db, err := sqldb.OpenSQLite(b.Context(), path, log)
	if err != nil {
		b.Fatal(err)
	}
	seedLineage(b, db)
	if err := registry.NewPolicies(db, log).Set(b.Context(), "golden/*", map[string]string{registry.KeyGolden: "true"}); err != nil {
		b.Fatal(err)
	}
	// Closing checkpoints the seed's write-ahead log, which the first
	// timed writes would otherwise pay for.
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	db, err = sqldb.OpenSQLite(b.Context(), path, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// BenchmarkManifestPut_Lineage measures a manifest PUT (an image of 5
// layers, the first 3 a golden image's, to a new tag) on SQLite holding
// 10,000 golden images among 100,000: "with" detects and records its
// base (and the derived row of its tag), "without" is the same PUT on the
// same database through a Service that keeps no lineage but everything
// else (policies, quotas, tag rules, webhooks). Each iteration does one
// of each, in alternating order, so that a busy machine slows both
// alike; the metrics are each one's time per PUT and their ratio (the
// issue's bound is ≤ 1.2). One PUT of each comes first, untimed: a
// process's first push with lineage syncs the golden flags with the
// policies (syncGolden), once per process and policy change, not per
// push.
func BenchmarkManifestPut_Lineage(b *testing.B) {
	db := openLineageBench(b)
	log := slog.New(slog.DiscardHandler)
	blobs, err := fs.New(b.TempDir(), log)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	with := registry.New(db, blobs, log, registry.Options{SparseManifests: true})
	without := registry.WithoutLineage(registry.New(db, blobs, log, registry.Options{SparseManifests: true}))
	put := func(svc *registry.Service, name string, i int) time.Duration {
		layers := append(benchLayers("golden/42/7", 3), benchLayers(fmt.Sprint("bench/", name, i), 2)...)
		body := benchManifest(layers)
		start := time.Now()
		if _, err := svc.PutManifest(ctx, "apps/bench-"+name, fmt.Sprint("v", i), registry.MediaTypeOCIManifest, body, nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	put(with, "with", 0)
	put(without, "without", 0)
	var tWith, tWithout time.Duration
	i := 0
	for b.Loop() {
		i++
		if i%2 == 0 {
			tWith += put(with, "with", i)
			tWithout += put(without, "without", i)
		} else {
			tWithout += put(without, "without", i)
			tWith += put(with, "with", i)
		}
	}
	b.ReportMetric(float64(tWith.Nanoseconds())/float64(i), "ns-with/put")
	b.ReportMetric(float64(tWithout.Nanoseconds())/float64(i), "ns-without/put")
	b.ReportMetric(float64(tWith)/float64(tWithout), "with/without")
	base, err := db.GetLineage(ctx, "apps/bench-with", digest.FromBytes(benchManifest(append(benchLayers("golden/42/7", 3), benchLayers("bench/with1", 2)...))))
	if err != nil || base.Base.Repo != "golden/b042" {
		b.Fatalf("the benchmark's first push found base %+v, %v; want golden/b042", base, err)
	}
	if _, err := db.GetLineage(ctx, "apps/bench-without", digest.FromBytes(benchManifest(append(benchLayers("golden/42/7", 3), benchLayers("bench/without1", 2)...)))); err == nil {
		b.Fatal("the baseline recorded a lineage")
	}
}

func benchManifest(layers []digest.Digest) []byte {
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	m := map[string]any{"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest,
		"config": desc{"application/vnd.oci.image.config.v1+json", digest.FromString(fmt.Sprint(layers)), 2}}
	var ls []desc
	for _, l := range layers {
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar+gzip", l, 3})
	}
	m["layers"] = ls
	body, _ := json.Marshal(m)
	return body
}

// BenchmarkUsedBy_10000Derived measures a golden image's "used by": the
// first page (100) of the 10,000 tags built on golden/b000:1.0, with
// their count and each one's staleness, among 100,000 images. The
// issue's bound is 50 ms. One call comes first, untimed: it syncs the
// golden flags, as a process's first lineage lookup does once.
func BenchmarkUsedBy_10000Derived(b *testing.B) {
	db := openLineageBench(b)
	log := slog.New(slog.DiscardHandler)
	svc := registry.New(db, nil, log, registry.Options{})
	ctx := context.Background()
	if _, _, err := svc.DerivedImages(ctx, "golden/b000", registry.DerivedQuery{Tag: "1.0", Limit: 100}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rows, total, err := svc.DerivedImages(ctx, "golden/b000", registry.DerivedQuery{Tag: "1.0", Limit: 100})
		if err != nil || total != benchUsedBy || len(rows) != 100 {
			b.Fatalf("used by = %d rows of %d, %v; want 100 of %d", len(rows), total, err, benchUsedBy)
		}
	}
}
