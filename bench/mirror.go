package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The pull-through cache's rows (issue 15). In each, wharf runs as a
// mirror of the scenario's upstream (scenario.MirrorOf), started first:
// the reference registry, whose direct figures fill the reference column,
// or, for peak RSS, the null registry, whose blob costs no disk.

// mirrorRepo is the mirrored repository: library/… is what dockerd's
// registry-mirrors asks for.
const mirrorRepo = "library/app"

// mirrorConfig is wharf's configuration as a mirror of upstream.
func mirrorConfig(upstream string) string {
	return fmt.Sprintf(`mirror:
  upstreams:
    - host: docker.io
      url: %s
      namespaces: [library]
`, upstream)
}

var goalMirrorRate = &goal{"≥ 4× reference", []check{ratioAtLeast(4)}}
var goalMirrorCold = &goal{"≥ 90% of a direct pull from the upstream", []check{ratioAtLeast(0.9)}}

func (h *harness) mirrorScenarios() []*scenario {
	return []*scenario{h.mirrorManifestScenario(), h.mirrorColdScenario(), h.mirrorMemoryScenario()}
}

// mirrorManifestScenario: a warm mirror's manifest GET by tag (cached,
// within its TTL), against the upstream answering it directly.
func (h *harness) mirrorManifestScenario() *scenario {
	p := h.plan
	im := manifestImage()
	path := "/v2/" + mirrorRepo + "/manifests/latest"
	title := fmt.Sprintf("10a. warm mirror: manifest GET by tag, %d connections (reference: the upstream directly)", p.ManifestConns)
	sc := &scenario{
		ID: "mirror-manifest", Title: title, Servers: []string{nameRef, nameWharf}, MirrorOf: nameRef,
		Rows: []rowSpec{
			{Metric: "rps", Title: title, Unit: "req/s", Higher: true, Goal: goalMirrorRate},
			{Metric: "p99_ms", Title: title + ", p99", Unit: "ms", Goal: goalLowerP99},
		},
		Setup: func(ctx context.Context, t *target) error {
			c := newRegClient(t.srv.base, 1, 64<<10)
			defer c.close()
			if t.name == nameRef {
				return c.pushImage(ctx, mirrorRepo, "latest", im, false)
			}
			// The first GET fetches the manifest from the upstream.
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
			if err != nil {
				return err
			}
			req.Header.Set("Accept", v1.MediaTypeImageManifest)
			resp, err := c.do(req, http.StatusOK)
			if err == nil {
				resp.Body.Close()
			}
			return err
		},
	}
	accept := map[string]string{"Accept": v1.MediaTypeImageManifest}
	sc.Measure = func(ctx context.Context, t *target, _ int) (sample, error) {
		r, err := runRawLoad(ctx, strings.TrimPrefix(t.srv.base, "http://"), http.MethodGet, path, accept, t.srv.pid(), p.ManifestConns, p.Warmup, p.ManifestDuration)
		if err != nil {
			return nil, err
		}
		return sample{"rps": r.rps(), "p99_ms": ms(percentile(r.Latency, 0.99)), "gen_cpu": r.GenCPU, "srv_cpu": r.SrvCPU,
			"errors": float64(r.Errors)}, nil
	}
	return sc
}

// mirrorColdScenario: one GET of a blob the mirror has not cached (a new
// one each repetition, and each repeated attempt), against the same GET
// from the upstream directly. The blob is pushed to the upstream and read
// once before the clock starts, so both come from its page cache. The
// limit is the null registry as a mirror of the same upstream (nullMirror):
// what a cache that sends, spools and hashes every byte can reach here.
func (h *harness) mirrorColdScenario() *scenario {
	p := h.plan
	blobOf := func(rep int) blob { return blob{Size: p.MirrorPull, Seed: 5000 + uint64(rep)} }
	title := fmt.Sprintf("10b. cold pull through the mirror: blob GET of %s (reference: the upstream directly)", sizeName(p.MirrorPull))
	var upstream *target
	seeded := map[int]bool{}
	return &scenario{
		ID: "mirror-cold", Title: title, Servers: []string{nameRef, nameWharf}, MirrorOf: nameRef,
		Null: &nullOpts{mirror: true},
		Rows: []rowSpec{{Metric: "mbps", Title: title, Unit: "MB/s", Higher: true, Goal: goalMirrorCold, Limit: limitNull,
			LimitName: "ceiling: the null registry as a mirror of the same upstream, sending, spooling and hashing each piece side by side, no registry"}},
		Setup: func(_ context.Context, t *target) error {
			if t.name == nameRef {
				upstream = t
			}
			return nil
		},
		Measure: func(ctx context.Context, t *target, rep int) (sample, error) {
			b := blobOf(rep)
			if !seeded[rep] {
				if err := h.seedBlob(ctx, upstream, mirrorRepo, b); err != nil {
					return nil, fmt.Errorf("seed the upstream: %w", err)
				}
				seeded[rep] = true
			}
			c := newRegClient(t.srv.base, 1, 256<<10)
			defer c.close()
			m := startCPU(t.srv.pid())
			t0 := time.Now()
			n, err := c.getBlob(ctx, mirrorRepo, h.digests.of(b), make([]byte, 1<<20))
			el := time.Since(t0)
			gen, srv := m.stop()
			if err == nil && n != b.Size {
				err = fmt.Errorf("GET: %d bytes, want %d", n, b.Size)
			}
			if err == nil && t.name == nameWharf {
				// The client has its bytes; the mirror then commits the
				// spool. That is not the pull's time, but it must not run
				// into the next measurement either (the reference's, say).
				err = waitSpoolEmpty(ctx, filepath.Join(t.srv.dataDir, "mirror-spool"))
			}
			return sample{"mbps": mbps(n, el), "gen_cpu": gen, "srv_cpu": srv}, err
		},
	}
}

// waitSpoolEmpty returns once the mirror's spool directory holds no file:
// a fetch leaves its spool file there until its commit is done.
func waitSpoolEmpty(ctx context.Context, dir string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the mirror's spool still holds %d files after 2 min", len(entries))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// mirrorMemoryScenario: clients that GET one uncached blob at once, all
// streamed from the mirror's one upstream fetch; the row is the mirror's
// peak RSS. The upstream is the null registry, which serves the 64 MiB
// pattern repeated: its blob needs no disk, and its digest is that of
// the blob whose seed is the pattern's own first bytes.
func (h *harness) mirrorMemoryScenario() *scenario {
	p := h.plan
	b := blob{Size: p.MirrorMem, Seed: binary.BigEndian.Uint64(pattern()[:8])}
	title := fmt.Sprintf("10c. peak RSS of the mirror streaming an uncached %s blob to %d clients", sizeName(b.Size), p.MirrorClients)
	return &scenario{
		ID: "mirror-memory", Title: title, Servers: []string{nameWharf}, MirrorOf: nameNull, Reps: 1,
		Null: &nullOpts{blobSize: b.Size},
		Rows: []rowSpec{{Metric: metricRSS, Title: title, Unit: "MiB", Goal: goalRSS}},
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			if t.null() {
				return sample{}, nil // the upstream: nothing of its own to measure
			}
			d := h.digests.of(b)
			c := newRegClient(t.srv.base, p.MirrorClients, 256<<10)
			defer c.close()
			t0 := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, p.MirrorClients)
			for range p.MirrorClients {
				wg.Go(func() {
					n, err := c.getBlob(ctx, mirrorRepo, d, make([]byte, 1<<20))
					if err == nil && n != b.Size {
						err = fmt.Errorf("GET: %d bytes, want %d", n, b.Size)
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					return nil, err
				}
			}
			return sample{"mbps": mbps(b.Size*int64(p.MirrorClients), time.Since(t0))}, nil
		},
	}
}

// writeMirrorConfig writes wharf's mirror configuration next to its data
// directory and returns the path.
func writeMirrorConfig(dataDir, upstream string) (string, error) {
	path := dataDir + "-mirror.yaml"
	return path, os.WriteFile(path, []byte(mirrorConfig(upstream)), 0o644)
}
