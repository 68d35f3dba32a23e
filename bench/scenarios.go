package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// sample is one repetition's figures, by metric name.
type sample map[string]float64

// target is one server under test in a scenario.
type target struct {
	name   string
	srv    *server
	shared *sharedStores // the shared-storage section's stores, if it runs there
}

func (t *target) null() bool { return t.name == nameNull }

// A scenario is one workload. The harness starts fresh servers for it (so
// that peak RSS is the scenario's own), runs Setup once per server, then
// Measure Reps times per server, alternating the servers' order.
type scenario struct {
	ID    string
	Title string
	// Null, when set, runs the null registry too: its figures are the
	// loopback limits of this scenario's rows.
	Null *nullOpts
	// Servers, when set, are the servers to start instead of wharf and
	// the reference (and the null registry).
	Servers []string
	// MirrorOf, when set, names the server that wharf mirrors (a pull-
	// through cache of its library/ namespace): it is started first.
	MirrorOf string
	// Shared runs the scenario on the shared-storage section's stores: a
	// fresh PostgreSQL cluster and S3 gateway, started before its servers.
	Shared bool
	// WharfArgs are added to wharf's command line in this scenario.
	WharfArgs []string
	// Reps overrides the plan's repetitions when positive.
	Reps    int
	Rows    []rowSpec
	Setup   func(ctx context.Context, t *target) error
	Measure func(ctx context.Context, t *target, rep int) (sample, error)
	// Extra runs once per server after the measured repetitions: cross-
	// checks whose figures appear in the JSON and the generator table.
	Extra func(ctx context.Context, t *target) (sample, error)
}

// limitKind says what a row's figure is a fraction of.
type limitKind int

const (
	limitNone limitKind = iota
	limitNull           // the null registry's figure for the same metric
	// limitCeiling is another target's figure for the same metric (LimitFrom),
	// doing the row's work with no registry: a physical limit, listed as one.
	limitCeiling
	// limitBaseline is another server's figure for the same metric in the
	// same run (LimitFrom): a yardstick, not a physical limit.
	limitBaseline
)

// rowSpec turns one metric of a scenario into a row of the table.
type rowSpec struct {
	Metric    string
	Title     string
	Unit      string
	Higher    bool // higher is better
	Limit     limitKind
	LimitName string // for limitNull rows: the name of the limit it measures
	LimitHow  string // how the null registry (or LimitFrom) measures it, when not the default
	LimitFrom string // limitCeiling and limitBaseline rows: the target whose figure is the limit
	// RefMetric, when set, fills the reference column with this metric of
	// wharf's samples: another client measured against the same wharf.
	RefMetric string
	// RefMissing says why RefMetric cannot be measured (a tool missing).
	RefMissing string
	Goal       *goal
}

// metricRSS names the scenario's peak RSS (VmHWM, MiB) in a rowSpec.
const metricRSS = "peak_rss_mib"

func (h *harness) scenarios() []*scenario {
	p := h.plan
	var out []*scenario
	out = append(out,
		h.pushScenario("push-mono", 0, fmt.Sprintf("1. monolithic push of %s (POST+PUT)", sizeName(p.PushSize)),
			"one request"),
		h.pushScenario("push-chunked", p.ChunkSize, fmt.Sprintf("2. chunked push of %s in %s PATCHes", sizeName(p.PushSize), sizeName(p.ChunkSize)),
			sizeName(p.ChunkSize)+" PATCHes"),
		h.pullScenario(),
		h.pullConcurrentScenario(),
		h.manifestScenario(),
		h.smallImagesScenario(),
		h.tagsScenario(),
		h.catalogScenario(),
		h.clientScenario(),
		h.gcScenario(),
		h.goldenScenario(),
	)
	for i, sz := range p.MemSizes {
		out = append(out, h.memoryScenario(sz, i == len(p.MemSizes)-1))
	}
	out = append(out, h.mirrorScenarios()...)
	return append(out, h.sharedScenarios()...)
}

// pushHow says what the push rows' limit does; see nullStore.
const pushHow = "the null registry in its storing mode, driven by the same client code, alternating with the registries: " +
	"the body from a loopback HTTP request, sha256 and the write overlapped by wharf's own registry.HashCopy, written through wharf's blobstore/fs " +
	"(sync_file_range every 8 MiB, background fsync every 32 MiB, final fsync, rename, directory fsync); " +
	"no metadata database, no sessions beyond memory, no access log"

func (h *harness) pushScenario(id string, chunk int64, title, requests string) *scenario {
	sz := h.plan.PushSize
	row := rowSpec{Metric: "mbps", Unit: "MB/s", Higher: true, Limit: limitNull, Goal: goalPush, Title: title,
		LimitName: "ceiling: loopback HTTP PUT + sha256 + wharf's blob writer and fsyncs, no registry, " + requests,
		LimitHow:  pushHow}
	sc := &scenario{ID: id, Title: row.Title, Null: &nullOpts{store: true}, Rows: []rowSpec{row}}
	sc.Measure = func(ctx context.Context, t *target, rep int) (sample, error) {
		return h.push(ctx, t, blob{Size: sz, Seed: uint64(rep) + 1}, chunk)
	}
	return sc
}

// push uploads b (monolithic when chunk is 0) and reports MB/s and the CPU
// both sides used.
func (h *harness) push(ctx context.Context, t *target, b blob, chunk int64) (sample, error) {
	d := h.digests.of(b) // before the clock starts
	c := newRegClient(t.srv.base, 1, 256<<10)
	defer c.close()
	m := startCPU(t.srv.pid())
	t0 := time.Now()
	var err error
	if chunk == 0 {
		err = c.pushMonolithic(ctx, "bench/push", d, b.reader(), b.Size)
	} else {
		err = c.pushChunked(ctx, "bench/push", d, b, chunk)
	}
	el := time.Since(t0)
	gen, srv := m.stop()
	return sample{"mbps": mbps(b.Size, el), "gen_cpu": gen, "srv_cpu": srv}, err
}

// seedBlob pushes b into repo and reads it once, so that both registries
// serve it from a warm page cache.
func (h *harness) seedBlob(ctx context.Context, t *target, repo string, b blob) error {
	if t.null() {
		return nil
	}
	c := newRegClient(t.srv.base, 1, 256<<10)
	defer c.close()
	d := h.digests.of(b)
	if err := c.pushMonolithic(ctx, repo, d, b.reader(), b.Size); err != nil {
		return err
	}
	n, err := c.getBlob(ctx, repo, d, make([]byte, 1<<20))
	if err == nil && n != b.Size {
		err = fmt.Errorf("GET %s: %d bytes, want %d", d, n, b.Size)
	}
	return err
}

func (h *harness) pullScenario() *scenario {
	b := blob{Size: h.plan.PullSize, Seed: 1000}
	title := fmt.Sprintf("3a. blob GET of %s", sizeName(b.Size))
	return &scenario{
		ID: "pull", Title: title, Null: &nullOpts{blobSize: b.Size},
		Rows: []rowSpec{{Metric: "mbps", Title: title, Unit: "MB/s", Higher: true, Limit: limitNull, Goal: goalPull,
			LimitName: "loopback HTTP GET, one stream"}},
		Setup: func(ctx context.Context, t *target) error { return h.seedBlob(ctx, t, "bench/pull", b) },
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			c := newRegClient(t.srv.base, 1, 256<<10)
			defer c.close()
			buf := make([]byte, 1<<20)
			m := startCPU(t.srv.pid())
			t0 := time.Now()
			n, err := c.getBlob(ctx, "bench/pull", h.digests.of(b), buf)
			el := time.Since(t0)
			gen, srv := m.stop()
			if err == nil && n != b.Size {
				err = fmt.Errorf("GET: %d bytes, want %d", n, b.Size)
			}
			return sample{"mbps": mbps(n, el), "gen_cpu": gen, "srv_cpu": srv}, err
		},
	}
}

func (h *harness) pullConcurrentScenario() *scenario {
	p := h.plan
	b := blob{Size: p.ConcBlob, Seed: 2000}
	title := fmt.Sprintf("3b. %d concurrent GETs of a %s blob (aggregate)", p.ConcClients, sizeName(b.Size))
	return &scenario{
		ID: "pull-concurrent", Title: title, Null: &nullOpts{blobSize: b.Size},
		Rows: []rowSpec{{Metric: "mbps", Title: title, Unit: "MB/s", Higher: true, Limit: limitNull, Goal: goalPull,
			LimitName: fmt.Sprintf("loopback HTTP GET, %d streams", p.ConcClients)}},
		Setup: func(ctx context.Context, t *target) error { return h.seedBlob(ctx, t, "bench/pull", b) },
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			c := newRegClient(t.srv.base, p.ConcClients, 256<<10)
			defer c.close()
			r, err := runStream(ctx, c, t.srv.pid(), p.ConcClients, p.Warmup, p.StreamDuration, "bench/pull", h.digests.of(b))
			return sample{"mbps": mbps(r.Bytes, r.Window), "gen_cpu": r.GenCPU, "srv_cpu": r.SrvCPU}, err
		},
	}
}

// manifestImage is the image whose manifest the request-rate rows fetch:
// six layers, like a typical application image (a 1.2 KB manifest).
func manifestImage() image { return newImage(3000, 6, 2048) }

func (h *harness) manifestScenario() *scenario {
	p := h.plan
	im := manifestImage()
	const repo, tag = "library/app", "latest"
	rows := func(method, name string) []rowSpec {
		t := fmt.Sprintf("4%s. manifest %s by tag, %d connections", name, method, p.ManifestConns)
		return []rowSpec{
			{Metric: method + "_rps", Title: t, Unit: "req/s", Higher: true, Limit: limitNull, Goal: goalRate,
				LimitName: fmt.Sprintf("bare net/http handler, manifest %s from memory, %d connections", method, p.ManifestConns)},
			{Metric: method + "_p50_ms", Title: t + ", p50", Unit: "ms"},
			{Metric: method + "_p99_ms", Title: t + ", p99", Unit: "ms", Goal: goalLowerP99},
		}
	}
	sc := &scenario{
		ID: "manifest", Title: "manifest GET and HEAD by tag",
		Null: &nullOpts{manifest: im.manifest},
		Rows: append(rows("GET", "a"), rows("HEAD", "b")...),
		Setup: func(ctx context.Context, t *target) error {
			if t.null() {
				return nil
			}
			c := newRegClient(t.srv.base, 1, 64<<10)
			defer c.close()
			return c.pushImage(ctx, repo, tag, im, false)
		},
	}
	accept := map[string]string{"Accept": v1.MediaTypeImageManifest}
	path := "/v2/" + repo + "/manifests/" + tag
	// load runs one method with one generator and files its figures under
	// prefix+method.
	load := func(ctx context.Context, t *target, s sample, gen, method, prefix string) error {
		var r loadResult
		var err error
		switch gen {
		case "raw":
			r, err = runRawLoad(ctx, strings.TrimPrefix(t.srv.base, "http://"), method, path, accept, t.srv.pid(),
				p.ManifestConns, p.Warmup, p.ManifestDuration)
		case "net/http":
			c := newRegClient(t.srv.base, p.ManifestConns, 64<<10)
			r, err = runLoad(ctx, c.hc, t.srv.pid(), p.ManifestConns, p.Warmup, p.ManifestDuration,
				func(ctx context.Context) (*http.Request, error) {
					req, err := http.NewRequestWithContext(ctx, method, c.url(path), nil)
					if err == nil {
						req.Header.Set("Accept", v1.MediaTypeImageManifest)
					}
					return req, err
				}, http.StatusOK)
			c.close()
		}
		if err != nil {
			return fmt.Errorf("%s with %s: %w", method, gen, err)
		}
		k := prefix + method
		s[k+"_rps"] = r.rps()
		s[k+"_p50_ms"] = ms(percentile(r.Latency, 0.50))
		s[k+"_p99_ms"] = ms(percentile(r.Latency, 0.99))
		s[k+"_gen_cpu"] = r.GenCPU
		s[k+"_srv_cpu"] = r.SrvCPU
		s[k+"_errors"] = float64(r.Errors)
		return nil
	}
	sc.Measure = func(ctx context.Context, t *target, _ int) (sample, error) {
		s := sample{}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if err := load(ctx, t, s, "raw", method, ""); err != nil {
				return s, err
			}
		}
		return s, nil
	}
	// Second opinions on the generator, once per server after the
	// measured repetitions: Go's net/http client, and wrk when installed.
	sc.Extra = func(ctx context.Context, t *target) (sample, error) {
		s := sample{}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if err := load(ctx, t, s, "net/http", method, "nethttp_"); err != nil {
				return s, err
			}
		}
		if h.wrk != "" {
			w, err := runWrk(ctx, h.wrk, t.srv.base+path, p.ManifestConns, p.ManifestDuration, t.srv.pid())
			if err != nil {
				return s, err
			}
			maps.Copy(s, w)
		}
		return s, nil
	}
	return sc
}

// forEach runs fn(i) for i in [0,n) on workers goroutines and returns the
// first error.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return first
}

func (h *harness) smallImagesScenario() *scenario {
	p := h.plan
	mk := func(base uint64) []image {
		ims := make([]image, p.SmallImages)
		for i := range ims {
			ims[i] = newImage(base+uint64(i), 1, 1024)
		}
		return ims
	}
	goal := goalSmall
	return &scenario{
		ID: "small-images", Title: fmt.Sprintf("5. push of %d small images", p.SmallImages),
		Rows: []rowSpec{
			{Metric: "seq_ips", Unit: "images/s", Higher: true, Goal: goal,
				Title: fmt.Sprintf("5a. push %d small images, one client", p.SmallImages)},
			{Metric: "par_ips", Unit: "images/s", Higher: true, Goal: goal,
				Title: fmt.Sprintf("5b. push %d small images, %d clients", p.SmallImages, p.SmallClients)},
			{Metric: "patch_ips", Unit: "images/s", Higher: true, Goal: goal,
				Title: fmt.Sprintf("5c. push %d small images, one client, each blob in a PATCH as docker sends it", p.SmallImages)},
		},
		Measure: func(ctx context.Context, t *target, rep int) (sample, error) {
			s := sample{}
			for k, v := range []struct {
				key     string
				clients int
				chunked bool
			}{{"seq_ips", 1, false}, {"par_ips", p.SmallClients, false}, {"patch_ips", 1, true}} {
				ims := mk(uint64(rep+1)<<32 | uint64(v.clients)<<24 | uint64(k)<<20)
				repo := fmt.Sprintf("small/%s-%d", v.key[:3], rep)
				c := newRegClient(t.srv.base, v.clients, 64<<10)
				t0 := time.Now()
				err := forEach(ctx, len(ims), v.clients, func(ctx context.Context, i int) error {
					return c.pushImage(ctx, repo, fmt.Sprintf("v%d", i), ims[i], v.chunked)
				})
				el := time.Since(t0)
				c.close()
				if err != nil {
					return s, err
				}
				s[v.key] = float64(len(ims)) / el.Seconds()
			}
			return s, nil
		},
	}
}

// listRows are the two rows of a listing scenario.
func listRows(what string, page int) []rowSpec {
	return []rowSpec{
		{Metric: "full_ms", Title: what + ", whole list in one response", Unit: "ms", Goal: goalList},
		{Metric: "page_ms", Title: fmt.Sprintf("%s, pages of n=%d (median page)", what, page), Unit: "ms", Goal: goalList},
	}
}

// measureList times the whole list (best of the plan's requests, median)
// and a walk through every page, checking that both hold want names.
func (h *harness) measureList(ctx context.Context, t *target, full, paged string, want int,
	names func(body map[string]any) int) (sample, error) {
	c := newRegClient(t.srv.base, 1, 256<<10)
	defer c.close()
	var lat []float64
	for range h.plan.ListRequests {
		var body map[string]any
		_, took, err := c.getList(ctx, c.url("")+full, &body)
		if err != nil {
			return nil, err
		}
		lat = append(lat, ms(took))
		if n := names(body); n != want {
			return nil, fmt.Errorf("GET %s: %d names, want %d", full, n, want)
		}
	}
	var pages []float64
	total := 0
	t0 := time.Now()
	for u := c.url("") + paged; u != ""; {
		var body map[string]any
		next, took, err := c.getList(ctx, u, &body)
		if err != nil {
			return nil, err
		}
		pages = append(pages, ms(took))
		total += names(body)
		u = next
		if len(pages) > want+1 {
			return nil, fmt.Errorf("GET %s: more pages than names", paged)
		}
	}
	walk := ms(time.Since(t0))
	if total != want {
		return nil, fmt.Errorf("walking %s: %d names in %d pages, want %d", paged, total, len(pages), want)
	}
	return sample{"full_ms": summarize(lat).Median, "page_ms": summarize(pages).Median,
		"walk_ms": walk, "pages": float64(len(pages))}, nil
}

func count(key string) func(map[string]any) int {
	return func(body map[string]any) int {
		l, _ := body[key].([]any)
		return len(l)
	}
}

func (h *harness) tagsScenario() *scenario {
	p := h.plan
	im := newImage(4000, 1, 1024)
	const repo = "bench/tags"
	tag := func(i int) string { return fmt.Sprintf("t%06d", i) }
	return &scenario{
		ID: "tags", Title: fmt.Sprintf("6a. tags/list of %d tags", p.Tags),
		Rows: listRows(fmt.Sprintf("6a. tags/list of %d tags", p.Tags), p.PageSize),
		Setup: func(ctx context.Context, t *target) error {
			c := newRegClient(t.srv.base, p.SetupClients, 64<<10)
			defer c.close()
			if err := c.pushImage(ctx, repo, tag(0), im, false); err != nil {
				return err
			}
			return forEach(ctx, p.Tags-1, p.SetupClients, func(ctx context.Context, i int) error {
				return c.putManifest(ctx, repo, tag(i+1), im.manifest)
			})
		},
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			return h.measureList(ctx, t, "/v2/"+repo+"/tags/list",
				fmt.Sprintf("/v2/%s/tags/list?n=%d", repo, p.PageSize), p.Tags, count("tags"))
		},
	}
}

func (h *harness) catalogScenario() *scenario {
	p := h.plan
	return &scenario{
		ID: "catalog", Title: fmt.Sprintf("6b. _catalog of %d repositories", p.Repos),
		Rows:  listRows(fmt.Sprintf("6b. _catalog of %d repositories", p.Repos), p.PageSize),
		Setup: func(ctx context.Context, t *target) error { return h.populateCatalog(ctx, t, p.Repos) },
		Measure: func(ctx context.Context, t *target, _ int) (sample, error) {
			// The reference answers 100 names unless asked for more.
			return h.measureList(ctx, t, fmt.Sprintf("/v2/_catalog?n=%d", p.Repos),
				fmt.Sprintf("/v2/_catalog?n=%d", p.PageSize), p.Repos, count("repositories"))
		},
	}
}

// populateCatalog makes repos repositories of one small image, its blobs
// mounted from the first: quick to make, and the catalog is the same.
func (h *harness) populateCatalog(ctx context.Context, t *target, repos int) error {
	p := h.plan
	im := newImage(5000, 1, 1024)
	name := func(i int) string { return fmt.Sprintf("cat/r%05d", i) }
	c := newRegClient(t.srv.base, p.SetupClients, 64<<10)
	defer c.close()
	if err := c.pushImage(ctx, name(0), "latest", im, false); err != nil {
		return err
	}
	return forEach(ctx, repos-1, p.SetupClients, func(ctx context.Context, i int) error {
		repo := name(i + 1)
		if err := c.mountOrPush(ctx, repo, name(0), im.layers[0], im.layerDigests[0]); err != nil {
			return err
		}
		if err := c.mountOrPush(ctx, repo, name(0), im.config, im.configDigest); err != nil {
			return err
		}
		return c.putManifest(ctx, repo, "latest", im.manifest)
	})
}

// memoryScenario pushes one blob of sz to freshly started servers: their
// peak RSS is what a push of that size costs.
func (h *harness) memoryScenario(sz int64, last bool) *scenario {
	g := goalRSS
	if last {
		g = goalRSSFlat
	}
	title := fmt.Sprintf("7. peak RSS during a %s push", sizeName(sz))
	return &scenario{
		ID: fmt.Sprintf("memory-%dMiB", sz>>20), Title: title, Reps: 1,
		Rows: []rowSpec{{Metric: metricRSS, Title: title, Unit: "MiB", Goal: g}},
		Measure: func(ctx context.Context, t *target, rep int) (sample, error) {
			return h.push(ctx, t, blob{Size: sz, Seed: uint64(rep) + 1}, 0)
		},
	}
}

// size formats a byte count the way the issue does: 16MiB, 1GiB.
func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}
