package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The shared-storage section's scenarios (ids shared-*; --only shared runs
// them all). Each starts its own PostgreSQL cluster and S3 gateway.

func (h *harness) sharedScenarios() []*scenario {
	p := h.plan
	return []*scenario{
		h.sharedPushScenario("shared-push-mono", 0,
			fmt.Sprintf("9a. shared storage: monolithic push of %s (POST+PUT)", sizeName(p.SharedBlob))),
		h.sharedPushScenario("shared-push-chunked", p.ChunkSize,
			fmt.Sprintf("9b. shared storage: chunked push of %s in %s PATCHes", sizeName(p.SharedBlob), sizeName(p.ChunkSize))),
		h.sharedPullScenario(),
		h.sharedManifestScenario(),
		h.sharedCatalogScenario(),
		h.sharedMemoryScenario(),
	}
}

// ceilingHow says what the blob rows' ceiling does.
const ceilingHow = "the section's versitygw driven straight by minio-go with the options of wharf's S3 driver, " +
	"alternating with the registries: "

func (h *harness) sharedPushScenario(id string, chunk int64, title string) *scenario {
	sz := h.plan.SharedBlob
	// The ceiling does what wharf's driver does with the same body and
	// nothing else: a monolithic push whose digest is known streams as
	// one PUT; a chunked push goes up as the parts of a multipart upload.
	row := rowSpec{Metric: "mbps", Title: title, Unit: "MB/s", Higher: true, Goal: goalSharedPush,
		Limit: limitCeiling, LimitFrom: nameS3,
		LimitName: fmt.Sprintf("versitygw PUT of %s in %s parts (minio-go), no registry", sizeName(sz), sizeName(sharedPart)),
		LimitHow: ceilingHow + "one multipart upload of the same size, its parts sent in order as wharf's driver sends them, " +
			"then completed; no sha256, no server-side copy into place, no database"}
	whole := chunk == 0
	if whole {
		row.LimitName = fmt.Sprintf("versitygw PUT of %s in one request (minio-go), no registry", sizeName(sz))
		row.LimitHow = ceilingHow + "one PutObject of the whole body, signed with its sha256 as the payload hash " +
			"(the gateway verifies it), as wharf's driver streams a monolithic push of known digest; " +
			"the digest is computed before the clock starts; no database"
	}
	return &scenario{
		ID: id, Title: title, Shared: true, Servers: []string{nameWharf, nameRef, nameS3}, Rows: []rowSpec{row},
		Measure: func(ctx context.Context, t *target, rep int) (sample, error) {
			b := blob{Size: sz, Seed: uint64(rep) + 1}
			if t.name != nameS3 {
				return h.push(ctx, t, b, chunk)
			}
			key := fmt.Sprintf("push-%d", rep)
			var d string
			if whole {
				d = strings.TrimPrefix(h.digests.of(b), "sha256:") // before the clock starts
			}
			m := startCPU(t.srv.pid())
			t0 := time.Now()
			var err error
			if whole {
				err = t.shared.putCeilingWhole(ctx, key, b, d)
			} else {
				err = t.shared.putCeiling(ctx, key, b)
			}
			el := time.Since(t0)
			gen, srv := m.stop()
			return sample{"mbps": mbps(b.Size, el), "gen_cpu": gen, "srv_cpu": srv}, err
		},
	}
}

func (h *harness) sharedPullScenario() *scenario {
	b := blob{Size: h.plan.SharedBlob, Seed: 1000}
	title := fmt.Sprintf("9c. shared storage: blob GET of %s", sizeName(b.Size))
	const key = "pull"
	return &scenario{
		ID: "shared-pull", Title: title, Shared: true, Servers: []string{nameWharf, nameRef, nameS3},
		Rows: []rowSpec{{Metric: "mbps", Title: title, Unit: "MB/s", Higher: true,
			Limit: limitCeiling, LimitFrom: nameS3,
			LimitName: fmt.Sprintf("versitygw GET of %s (minio-go), no registry", sizeName(b.Size)),
			LimitHow:  ceilingHow + "GetObject of an object of the same size, read in 1 MiB reads"}},
		Setup: func(ctx context.Context, t *target) error {
			if t.name == nameS3 {
				return t.shared.putCeiling(ctx, key, b)
			}
			return h.seedBlob(ctx, t, "bench/pull", b)
		},
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			buf := make([]byte, 1<<20)
			c := newRegClient(t.srv.base, 1, 256<<10)
			defer c.close()
			m := startCPU(t.srv.pid())
			t0 := time.Now()
			var n int64
			var err error
			if t.name == nameS3 {
				n, err = t.shared.getCeiling(ctx, key, buf)
			} else {
				n, err = c.getBlob(ctx, "bench/pull", h.digests.of(b), buf)
			}
			el := time.Since(t0)
			gen, srv := m.stop()
			if err == nil && n != b.Size {
				err = fmt.Errorf("GET: %d bytes, want %d", n, b.Size)
			}
			return sample{"mbps": mbps(n, el), "gen_cpu": gen, "srv_cpu": srv}, err
		},
	}
}

func (h *harness) sharedManifestScenario() *scenario {
	p := h.plan
	im := manifestImage()
	const repo, tag = "library/app", "latest"
	title := fmt.Sprintf("9d. shared storage: manifest GET by tag, %d connections", p.ManifestConns)
	path := "/v2/" + repo + "/manifests/" + tag
	return &scenario{
		ID: "shared-manifest", Title: title, Shared: true, Servers: []string{nameWharf, nameRef, nameWharfSQLite},
		Rows: []rowSpec{
			{Metric: "GET_rps", Title: title, Unit: "req/s", Higher: true, Goal: goalSharedRate,
				Limit: limitBaseline, LimitFrom: nameWharfSQLite,
				LimitName: "wharf on SQLite + filesystem, same scenario"},
			{Metric: "GET_p99_ms", Title: title + ", p99", Unit: "ms"},
		},
		Setup: func(ctx context.Context, t *target) error {
			c := newRegClient(t.srv.base, 1, 64<<10)
			defer c.close()
			return c.pushImage(ctx, repo, tag, im, false)
		},
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			r, err := runRawLoad(ctx, t.srv.base[len("http://"):], "GET", path,
				map[string]string{"Accept": v1.MediaTypeImageManifest}, t.srv.pid(),
				p.ManifestConns, p.Warmup, p.SharedManifestDuration)
			if err != nil {
				return nil, err
			}
			return sample{"GET_rps": r.rps(), "GET_p50_ms": ms(percentile(r.Latency, 0.50)),
				"GET_p99_ms": ms(percentile(r.Latency, 0.99)), "gen_cpu": r.GenCPU, "srv_cpu": r.SrvCPU,
				"errors": float64(r.Errors)}, nil
		},
	}
}

func (h *harness) sharedCatalogScenario() *scenario {
	p := h.plan
	title := fmt.Sprintf("9e. shared storage: _catalog of %d repositories, whole list in one response", p.Repos)
	return &scenario{
		ID: "shared-catalog", Title: title, Shared: true,
		Rows:  []rowSpec{{Metric: "full_ms", Title: title, Unit: "ms", Goal: goalSharedList}},
		Setup: func(ctx context.Context, t *target) error { return h.populateCatalog(ctx, t, p.Repos) },
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			c := newRegClient(t.srv.base, 1, 256<<10)
			defer c.close()
			full := fmt.Sprintf("/v2/_catalog?n=%d", p.Repos)
			var lat []float64
			for range p.SharedListRequests {
				var body map[string]any
				_, took, err := c.getList(ctx, c.url(full), &body)
				if err != nil {
					return nil, err
				}
				if n := count("repositories")(body); n != p.Repos {
					return nil, fmt.Errorf("GET %s: %d names, want %d", full, n, p.Repos)
				}
				lat = append(lat, ms(took))
			}
			return sample{"full_ms": summarize(lat).Median}, nil
		},
	}
}

// sharedMemoryScenario pushes one large blob into freshly started servers:
// wharf's peak RSS must stay within its budget plus the one part an
// upload holds.
func (h *harness) sharedMemoryScenario() *scenario {
	sz := h.plan.SharedMem
	title := fmt.Sprintf("9f. shared storage: peak RSS during a %s push", sizeName(sz))
	return &scenario{
		ID: "shared-memory", Title: title, Shared: true, Reps: 1,
		Rows: []rowSpec{{Metric: metricRSS, Title: title, Unit: "MiB", Goal: goalSharedRSS}},
		Measure: func(ctx context.Context, t *target, rep int) (sample, error) {
			return h.push(ctx, t, blob{Size: sz, Seed: uint64(rep) + 1}, 0)
		},
	}
}
