package registrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry"
)

// LineageScale sizes the database SeedLineage writes: GoldenRepos golden
// repositories of GoldenPerRepo images (tags 1.0, 1.1, …), and Apps
// images in repositories of AppsPerRepo, each built on a golden image;
// the first UsedBy of them (tags v0, v1, …) on golden/b000:1.0.
type LineageScale struct {
	GoldenRepos, GoldenPerRepo int
	Apps, AppsPerRepo          int
	UsedBy                     int
}

// FullLineageScale is the golden issue's: 10,000 golden images among
// 100,000, one of them the base of 10,000 tagged images.
var FullLineageScale = LineageScale{GoldenRepos: 100, GoldenPerRepo: 100, Apps: 90_000, AppsPerRepo: 90, UsedBy: 10_000}

// LineageLayers names n layers of an image of the seeded database: a
// golden image's are LineageLayers(fmt.Sprintf("golden/%d/%d", repo, i), 3).
func LineageLayers(prefix string, n int) []digest.Digest {
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

// SeedLineage fills an empty store through Bulk.Load (a push at a time
// would take minutes at the full scale) with what pushes would have
// written: repositories, manifests with their 6 blob references, tags,
// lineages (and, by the store, their derived rows), and the golden
// policy on golden/*. A golden image of repository r, number i, has the
// layers LineageLayers(fmt.Sprintf("golden/%d/%d", r, i), 3).
func SeedLineage(ctx context.Context, db metadata.Bulk, policies metadata.PolicyStore, sc LineageScale) error {
	var repos, manifests, refs, lineage, tags []metadata.Record
	add := func(repo, tag string, n int, l metadata.Record) metadata.Record {
		content := fmt.Sprintf(`{"schemaVersion":2,"seed":%q}`, fmt.Sprint(repo, "/", n))
		d := digest.FromString(content).String()
		manifests = append(manifests, metadata.Record{Key: []string{repo, d}, Values: []any{
			registry.MediaTypeOCIManifest, []byte(content), int64(len(content)), "application/vnd.oci.image.config.v1+json", "", "", int64(1)}})
		// A pushed image references its config and layers: lookups of an
		// image's parents must find them among these, as in a real store.
		for _, b := range LineageLayers(d, 6) {
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
	for r := range sc.GoldenRepos {
		repo := fmt.Sprintf("golden/b%03d", r)
		repos = append(repos, metadata.Record{Key: []string{repo}, Values: []any{int64(1)}})
		for i := range sc.GoldenPerRepo {
			layers := LineageLayers(fmt.Sprintf("golden/%d/%d", r, i), 3)
			golden = append(golden, add(repo, fmt.Sprintf("1.%d", i), i, lineageRecord(repo, layers, true, nil, 0)))
		}
	}
	for i := range sc.Apps {
		repo := fmt.Sprintf("apps/a%04d", i/sc.AppsPerRepo)
		if i%sc.AppsPerRepo == 0 {
			repos = append(repos, metadata.Record{Key: []string{repo}, Values: []any{int64(1)}})
		}
		g := i % len(golden)
		if i < sc.UsedBy {
			g = 0 // the used-by measurement's base: golden/b000:1.0
		}
		layers := append(LineageLayers(fmt.Sprintf("golden/%d/%d", g/sc.GoldenPerRepo, g%sc.GoldenPerRepo), 3), LineageLayers(repo+fmt.Sprint(i), 2)...)
		tag := ""
		if i < sc.UsedBy {
			tag = fmt.Sprintf("v%d", i)
		}
		add(repo, tag, i, lineageRecord(repo, layers, false, &golden[g], 3))
	}
	for _, k := range []struct {
		kind metadata.Kind
		recs []metadata.Record
	}{{metadata.KindRepositories, repos}, {metadata.KindManifests, manifests}, {metadata.KindManifestRefs, refs},
		{metadata.KindTags, tags}, {metadata.KindLineage, lineage}} {
		for recs := k.recs; len(recs) > 0; {
			n := min(len(recs), 5000)
			if _, err := db.Load(ctx, k.kind, recs[:n], metadata.LoadKeep); err != nil {
				return fmt.Errorf("load %s: %w", k.kind, err)
			}
			recs = recs[n:]
		}
	}
	return registry.NewPolicies(policies, nil).Set(ctx, "golden/*", map[string]string{registry.KeyGolden: "true"})
}

// PutLineageImage pushes through svc, to repo:v<i>, an image of 5 layers
// whose first 3 are a seeded golden image's (golden/b042:1.7), and
// returns how long the PUT took.
func PutLineageImage(ctx context.Context, svc *registry.Service, repo string, i int) (time.Duration, error) {
	layers := append(LineageLayers("golden/42/7", 3), LineageLayers(fmt.Sprint(repo, "/", i), 2)...)
	body := LineageImage(layers)
	start := time.Now()
	_, err := svc.PutManifest(ctx, repo, fmt.Sprint("v", i), registry.MediaTypeOCIManifest, body, nil)
	return time.Since(start), err
}

// LineageImage is an image manifest of layers.
func LineageImage(layers []digest.Digest) []byte {
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
