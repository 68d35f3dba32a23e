package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

// The golden rows (golden images and lineage) measure wharf alone: no
// other registry has the feature, so they have no reference column; their
// targets are the bounds. They run in process, on wharf's
// registry.Service over SQLite, because the database is seeded through
// the metadata store (Bulk.Load, as `wharf migrate` writes) rather than
// pushed: 100,000 pushes would take most of an hour. The wharf server
// the harness starts for the scenario is not used.

var (
	goalUsedBy  = &goal{"< 50 ms", []check{wharfBelow(50, "ms")}}
	goalLineage = &goal{"≤ 1.2× (with / without)", []check{wharfAtMostRatio(1.2)}}
	goalFloat   = &goal{"≤ 1 ms added", []check{wharfAtMost(1, "ms")}}
)

func wharfBelow(v float64, unit string) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Wharf == nil {
			return false, "no figure"
		}
		return r.Wharf.Median < v, fmt.Sprintf("%.1f %s, want < %.0f %s", r.Wharf.Median, unit, v, unit)
	}
}

func wharfAtMostRatio(x float64) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Wharf == nil {
			return false, "no figure"
		}
		return r.Wharf.Median <= x, fmt.Sprintf("%.2f×, want ≤ %.2g×", r.Wharf.Median, x)
	}
}

// goldenPuts is how many PUTs of each kind one repetition times.
const goldenPuts = 200

// The floating-tag row pushes versions into two repositories of the
// seeded database that differ only in the policy: floatRepo's namespace
// has floating-tags=semver, plainRepo's none. Each starts with
// floatSeedVersions version tags, so that every push's plan reads a
// repository's worth of tags, as it would in a project with a history.
const (
	floatRepo         = "floating/app"
	plainRepo         = "plain/app"
	floatSeedVersions = 200
)

func (h *harness) goldenScenario() *scenario {
	sc := h.plan.Golden
	scale := fmt.Sprintf("%d golden images among %d, seeded through the metadata store", sc.GoldenRepos*sc.GoldenPerRepo,
		sc.GoldenRepos*sc.GoldenPerRepo+sc.Apps)
	var db *sqldb.DB
	var with, without *registry.Service
	var seq int
	return &scenario{
		ID: "golden", Title: "golden images: used by and lineage detection, in process on SQLite, " + scale,
		Servers: []string{nameWharf},
		Rows: []rowSpec{
			{Metric: "used_by_ms", Unit: "ms", Goal: goalUsedBy,
				Title: fmt.Sprintf("12a. \"used by\" of a golden image with %d derived tags (first page of 100, count, staleness), %s", sc.UsedBy, scale)},
			{Metric: "put_ratio", Unit: "×", Goal: goalLineage,
				Title: fmt.Sprintf("12b. median manifest PUT with lineage detection / median without (same database, alternating, %d each), %s", goldenPuts, scale)},
			{Metric: "float_added_ms", Unit: "ms", Goal: goalFloat,
				Title: fmt.Sprintf("12c. time a version push spends moving floating tags: median PUT of a new `2.R.N` under floating-tags=semver (moves `2.R`, `2`, `latest`) minus the median of the same PUT without the policy (%d each, alternating; both repositories start with %d version tags), same database", goldenPuts, floatSeedVersions)},
		},
		Setup: func(ctx context.Context, t *target) error {
			log := slog.New(slog.DiscardHandler)
			dir := filepath.Join(h.work, "golden")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			path := filepath.Join(dir, "wharf.db")
			var err error
			if db, err = sqldb.OpenSQLite(ctx, path, log); err != nil {
				return err
			}
			if err := registrytest.SeedLineage(ctx, db, db, sc); err != nil {
				return err
			}
			blobs, err := fs.New(filepath.Join(dir, "blobs"), log)
			if err != nil {
				return err
			}
			with = registry.New(db, blobs, log, registry.Options{SparseManifests: true})
			without = registry.New(db, blobs, log, registry.Options{SparseManifests: true, NoLineage: true})
			// The first lineage lookup of a process syncs the golden flags
			// once: not what a request costs.
			if _, _, err = with.DerivedImages(ctx, "golden/b000", registry.DerivedQuery{Tag: "1.0", Limit: 100}); err != nil {
				return err
			}
			return seedFloating(ctx, with)
		},
		Measure: func(ctx context.Context, t *target, rep int) (sample, error) {
			var calls []float64
			for range 20 {
				t0 := time.Now()
				rows, total, err := with.DerivedImages(ctx, "golden/b000", registry.DerivedQuery{Tag: "1.0", Limit: 100})
				if err != nil {
					return nil, err
				}
				if total != sc.UsedBy || len(rows) != min(100, sc.UsedBy) {
					return nil, fmt.Errorf("used by = %d rows of %d; want %d", len(rows), total, sc.UsedBy)
				}
				calls = append(calls, float64(time.Since(t0).Microseconds())/1000)
			}
			slices.Sort(calls)
			// Medians, as row 12c takes: a PUT waits for a commit to reach
			// the disk, and this machine's fsyncs stall now and then for
			// tens of milliseconds, on either side at random, which a sum
			// adds to what lineage costs (3 repetitions of 200 pairs, same
			// build: sums 1.31/1.03/1.36, and in a second run 1.19/1.03/
			// 1.15 where the medians were 1.25/1.16/1.25). The sums' ratio
			// is in the JSON as put_sum_ratio, and the medians themselves
			// as put_with_us and put_without_us.
			var tWith, tWithout []float64
			for i := range goldenPuts {
				seq++
				first, second := with, without
				if i%2 == 1 {
					first, second = without, with
				}
				for _, svc := range []*registry.Service{first, second} {
					name := "with"
					if svc == without {
						name = "without"
					}
					d, err := registrytest.PutLineageImage(ctx, svc, "apps/bench-"+name, seq)
					if err != nil {
						return nil, err
					}
					if svc == with {
						tWith = append(tWith, float64(d))
					} else {
						tWithout = append(tWithout, float64(d))
					}
				}
			}
			added, err := floatingAdded(ctx, with, rep)
			if err != nil {
				return nil, err
			}
			medWith, medWithout := summarize(tWith).Median, summarize(tWithout).Median
			return sample{"used_by_ms": calls[len(calls)/2], "put_ratio": medWith / medWithout,
				"put_with_us": medWith / 1e3, "put_without_us": medWithout / 1e3,
				"put_sum_ratio": total(tWith) / total(tWithout), "float_added_ms": added}, nil
		},
	}
}

// seedFloating sets the policy of floatRepo's namespace and gives both
// repositories their version tags (on one manifest each: one write).
func seedFloating(ctx context.Context, svc *registry.Service) error {
	ctx = registry.WithActor(ctx, "bench")
	if err := svc.Policies().Set(ctx, path.Dir(floatRepo)+"/*", map[string]string{registry.KeyFloatingTags: "semver"}); err != nil {
		return err
	}
	var tags []string
	for i := range floatSeedVersions {
		tags = append(tags, fmt.Sprintf("1.%d.%d", i/20, i%20))
	}
	for _, repo := range []string{floatRepo, plainRepo} {
		body := registrytest.LineageImage(registrytest.LineageLayers(repo+"/seed", 2))
		if _, err := svc.PutManifest(ctx, repo, tags[0], registry.MediaTypeOCIManifest, body, tags[1:]); err != nil {
			return fmt.Errorf("seed %s: %w", repo, err)
		}
	}
	return nil
}

// floatingAdded pushes goldenPuts new versions 2.rep.N into each of
// floatRepo and plainRepo, alternating which goes first, and returns the
// difference of their median PUTs in ms. It checks that the policy moved
// `2` in floatRepo and that nothing made one in plainRepo.
func floatingAdded(ctx context.Context, svc *registry.Service, rep int) (float64, error) {
	ctx = registry.WithActor(ctx, "bench")
	var float, plain []float64
	var last digest.Digest
	for i := range goldenPuts {
		tag := fmt.Sprintf("2.%d.%d", rep, i)
		order := []string{floatRepo, plainRepo}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, repo := range order {
			body := registrytest.LineageImage(registrytest.LineageLayers(fmt.Sprint(repo, "/", tag), 2))
			t0 := time.Now()
			res, err := svc.PutManifest(ctx, repo, tag, registry.MediaTypeOCIManifest, body, nil)
			took := float64(time.Since(t0).Microseconds()) / 1000
			if err != nil {
				return 0, fmt.Errorf("push %s:%s: %w", repo, tag, err)
			}
			if repo == floatRepo {
				float, last = append(float, took), res.Digest
			} else {
				plain = append(plain, took)
			}
		}
	}
	if m, err := svc.GetManifest(ctx, floatRepo, "2"); err != nil || m.Digest != last {
		return 0, fmt.Errorf("%s:2 does not point to the last version pushed (%v)", floatRepo, err)
	}
	if _, err := svc.GetManifest(ctx, plainRepo, "2"); err == nil {
		return 0, fmt.Errorf("%s:2 exists without the policy", plainRepo)
	}
	slices.Sort(float)
	slices.Sort(plain)
	return float[len(float)/2] - plain[len(plain)/2], nil
}
