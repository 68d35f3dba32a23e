package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// harness holds what every scenario needs and collects the results.
type harness struct {
	opts    options
	plan    plan
	fleet   *fleet
	digests digestCache
	res     *Results
	work    string // temporary data directories live here
	outDir  string
	wrk     string // path of wrk, or "" to skip the cross-check
	limits  map[string]*summary
	start   time.Time
}

func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}

// measureLimits measures the non-HTTP physical limits, repeated like
// everything else.
func (h *harness) measureLimits(ctx context.Context) error {
	var sha, fs []float64
	for range h.plan.Reps {
		h.waitQuiet(ctx)
		sha = append(sha, sha256Limit(h.plan.LimitSize))
		h.waitQuiet(ctx)
		v, err := fsyncLimit(h.work, h.plan.LimitSize)
		if err != nil {
			return fmt.Errorf("write+fsync limit: %w", err)
		}
		fs = append(fs, v)
	}
	h.limits = map[string]*summary{"sha256": summarize(sha), "fsync": summarize(fs)}
	h.res.Limits = append(h.res.Limits,
		limitResult{Name: "sha256, one core (crypto/sha256)", Unit: "MB/s", Value: h.limits["sha256"],
			How: fmt.Sprintf("hash %s in 1 MiB writes on one goroutine", sizeName(h.plan.LimitSize))},
		limitResult{Name: "sequential write+fsync, data filesystem", Unit: "MB/s", Value: h.limits["fsync"],
			How: fmt.Sprintf("write %s in 1 MiB writes to a new file next to the data directories, fsync; time includes the fsync", sizeName(h.plan.LimitSize))},
	)
	h.progress("limits: sha256 %.0f MB/s, write+fsync %.0f MB/s", h.limits["sha256"].Median, h.limits["fsync"].Median)
	return nil
}

// waitQuiet waits, up to --quiet-wait, until the rest of the machine (other
// processes, other sessions) uses less than --quiet-cores of CPU, so that a
// measurement does not overlap someone else's burst. It returns how long it
// waited; what the rest of the machine used during each measurement is
// recorded as bg_cpu either way.
func (h *harness) waitQuiet(ctx context.Context) time.Duration {
	t0 := time.Now()
	if h.opts.quietWait <= 0 {
		return 0
	}
	for said := false; ; {
		a0, s0, w0 := machineBusy(), selfCPU(), time.Now()
		select {
		case <-ctx.Done():
			return time.Since(t0)
		case <-time.After(500 * time.Millisecond):
		}
		other := ((machineBusy() - a0) - (selfCPU() - s0)).Seconds() / time.Since(w0).Seconds()
		if other < h.opts.quietCores {
			return time.Since(t0)
		}
		if time.Since(t0) > h.opts.quietWait {
			h.progress("  machine still busy (%.2f cores used elsewhere) after %s; measuring anyway", other, h.opts.quietWait)
			return time.Since(t0)
		}
		if !said {
			h.progress("  machine busy (%.2f cores used elsewhere); waiting up to %s", other, h.opts.quietWait)
			said = true
		}
	}
}

// runScenario starts fresh servers, runs sc against them alternating, and
// records its rows.
func (h *harness) runScenario(ctx context.Context, sc *scenario) error {
	t0 := time.Now()
	h.progress("scenario %s: %s", sc.ID, sc.Title)
	dir := filepath.Join(h.work, sc.ID)
	if !h.opts.keep {
		defer os.RemoveAll(dir)
	}
	names := []string{nameWharf, nameRef}
	if sc.Servers != nil {
		names = sc.Servers
	}
	var null nullOpts
	if sc.Null != nil {
		names, null = append(names, nameNull), *sc.Null
	}
	sr := scenarioResult{ID: sc.ID, Title: sc.Title, Errors: map[string]string{}, SetupSeconds: map[string]float64{},
		Metrics: map[string]map[string]*summary{}}
	var stores *sharedStores
	if sc.Shared {
		var err error
		if stores, err = h.startShared(ctx, dir); err != nil {
			// One clear line, in every column: nothing of the scenario
			// can run without its stores.
			for _, n := range names {
				sr.Errors[n] = err.Error()
			}
			names = nil
			h.progress("  %v", err)
		} else {
			defer stores.stop()
		}
	}
	if sc.MirrorOf != "" {
		// The upstream first: wharf is started knowing where it is.
		names = append([]string{sc.MirrorOf}, slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == sc.MirrorOf })...)
	}
	var targets []*target
	var upstream *server
	for _, n := range names {
		var mirrorOf *server
		if (n == nameWharf || n == nameNull && null.mirror) && sc.MirrorOf != "" {
			if mirrorOf = upstream; mirrorOf == nil {
				sr.Errors[n] = "start: its upstream " + sc.MirrorOf + " did not start"
				continue
			}
		}
		srv, err := h.fleet.start(ctx, n, dir, null, stores, mirrorOf, sc.WharfArgs...)
		if err == nil && n == sc.MirrorOf {
			upstream = srv
		}
		if err != nil {
			sr.Errors[n] = "start: " + err.Error()
			continue
		}
		defer srv.stop()
		t := &target{name: n, srv: srv, shared: stores}
		if sc.Setup != nil {
			s0 := time.Now()
			if err := sc.Setup(ctx, t); err != nil {
				sr.Errors[n] = "setup: " + err.Error()
				continue
			}
			sr.SetupSeconds[n] = time.Since(s0).Seconds()
			h.progress("  setup %-9s %.1fs", n, sr.SetupSeconds[n])
		}
		targets = append(targets, t)
	}

	reps := orDefault(sc.Reps, h.plan.Reps)
	samples := map[string][]sample{}
	// The null registry takes its turn among the servers: this disk is
	// faster after an idle spell than after gigabytes of writes, so a
	// limit measured once at the start says little about a push measured
	// minutes later.
	turns := len(targets)
	for rep := range reps {
		// Rotate the order every repetition so that no server always runs
		// first (or right after another's writeback).
		for i := range turns {
			t := targets[(i+rep)%turns]
			if _, failed := sr.Errors[t.name]; failed {
				continue
			}
			s, err := h.measure(ctx, sc, t, rep, &sr)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				sr.Errors[t.name] = fmt.Sprintf("rep %d: %v", rep+1, err)
				h.progress("  rep %d %-9s error: %v", rep+1, t.name, err)
				continue
			}
			samples[t.name] = append(samples[t.name], s)
			h.progress("  rep %d %-9s %s", rep+1, t.name, brief(s, sc.Rows))
		}
	}

	rss := map[string]float64{}
	for _, t := range targets {
		if t.null() || t.name == nameS3 {
			continue
		}
		if v, err := t.srv.peakRSS(); err == nil {
			rss[t.name] = float64(v) / (1 << 20)
		}
	}
	sr.PeakRSSMiB = rss
	for name, ss := range samples {
		sr.Metrics[name] = summarizeSamples(ss)
	}

	var missed bool
	for _, spec := range sc.Rows {
		r := h.row(sc, spec, samples, rss, sr.Errors)
		if r.Met != nil && !*r.Met {
			missed = true
		}
		h.res.Rows = append(h.res.Rows, r)
	}

	if sc.Extra != nil {
		for _, t := range targets {
			if _, failed := sr.Errors[t.name]; failed {
				continue
			}
			s, err := h.quietly(ctx, t, &sr, "extra_bg_cpu", func() (sample, error) { return sc.Extra(ctx, t) },
				"cross-check "+t.name)
			if err != nil {
				sr.Errors[t.name+" (cross-check)"] = err.Error()
				continue
			}
			for k, v := range s {
				if sr.Metrics[t.name] == nil {
					sr.Metrics[t.name] = map[string]*summary{}
				}
				sr.Metrics[t.name][k] = summarize([]float64{v})
			}
			h.progress("  cross-check %-9s %s", t.name, brief(s, nil))
		}
	}

	if h.opts.profile == "all" || h.opts.profile == "miss" && missed {
		for _, t := range targets {
			if t.name != nameWharf || t.srv.debugAddr == "" {
				continue
			}
			if _, failed := sr.Errors[t.name]; failed {
				continue
			}
			p, err := h.profile(ctx, sc, t, reps)
			if err != nil {
				sr.Errors["wharf (profile)"] = err.Error()
			} else {
				h.res.Profiles = append(h.res.Profiles, p)
			}
		}
	}
	for n, e := range sr.Errors {
		h.res.Errors = append(h.res.Errors, fmt.Sprintf("%s, %s: %s", sc.ID, n, e))
	}
	sr.Seconds = time.Since(t0).Seconds()
	h.res.Scenarios = append(h.res.Scenarios, sr)
	return nil
}

// measure runs one repetition on a quiet machine: after sync (the previous
// measurement's dirty pages are not this one's cost) and after waiting for
// other processes to calm down. A repetition during which the rest of the
// machine used more than twice --quiet-cores is repeated, up to --retries
// times; the figure kept says how busy the machine was (bg_cpu).
func (h *harness) measure(ctx context.Context, sc *scenario, t *target, rep int, sr *scenarioResult) (sample, error) {
	try := 0
	return h.quietly(ctx, t, sr, "bg_cpu", func() (sample, error) {
		// A repeated attempt gets its own repetition number, hence its own
		// blobs, repositories and tags: it must not find the first
		// attempt's already in place.
		r := rep + 1000*try
		try++
		return sc.Measure(ctx, t, r)
	}, fmt.Sprintf("rep %d %-9s", rep+1, t.name))
}

func (h *harness) quietly(ctx context.Context, t *target, sr *scenarioResult, bgKey string, fn func() (sample, error), what string) (sample, error) {
	for try := 0; ; try++ {
		syscall.Sync()
		sr.QuietWaitSeconds += h.waitQuiet(ctx).Seconds()
		m := startCPU(t.srv.pid(), t.srv.stores...)
		s, err := fn()
		if err != nil || s == nil {
			return s, err
		}
		gen, srv, other := m.stopAll()
		s[bgKey] = other
		if len(t.srv.stores) > 0 && bgKey == "bg_cpu" {
			s["stores_cpu"] = m.storeCores
		}
		if _, ok := s["srv_cpu"]; !ok && bgKey == "bg_cpu" { // the whole repetition, when the scenario did not time it more closely
			s["gen_cpu"], s["srv_cpu"] = gen, srv
		}
		if other <= 2*h.opts.quietCores || try >= h.opts.retries {
			return s, nil
		}
		sr.Retries++
		h.progress("  %s other processes used %.2f cores meanwhile; measuring again", what, other)
	}
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// row builds one table row from the samples of the three servers.
func (h *harness) row(sc *scenario, spec rowSpec, samples map[string][]sample, rss map[string]float64, errs map[string]string) rowResult {
	r := rowResult{Scenario: sc.ID, Metric: spec.Metric, Title: spec.Title, Unit: spec.Unit, HigherIsBetter: spec.Higher}
	get := func(name string) *summary { return h.metric(spec.Metric, name, samples, rss) }
	r.Wharf, r.Reference, r.Null = get(nameWharf), get(nameRef), get(nameNull)
	if spec.RefMetric != "" {
		r.Reference = h.metric(spec.RefMetric, nameWharf, samples, rss)
	}
	if r.Wharf != nil && r.Reference != nil && r.Reference.Median != 0 {
		r.Ratio = ptr(r.Wharf.Median / r.Reference.Median)
	}
	switch spec.Limit {
	case limitNull:
		if r.Null != nil {
			how := spec.LimitHow
			if how == "" {
				how = "the null registry (bare net/http, no storage) driven by the same client code, alternating with the registries"
			}
			r.LimitName, r.Limit = spec.LimitName, ptr(r.Null.Median)
			h.res.Limits = append(h.res.Limits, limitResult{Name: spec.LimitName, Unit: spec.Unit, Value: r.Null,
				How: how + " in " + sc.ID})
		}
	case limitCeiling, limitBaseline:
		if v := get(spec.LimitFrom); v != nil {
			r.LimitName, r.Limit = spec.LimitName, ptr(v.Median)
			if spec.Limit == limitCeiling {
				h.res.Limits = append(h.res.Limits, limitResult{Name: spec.LimitName, Unit: spec.Unit, Value: v,
					How: spec.LimitHow + " in " + sc.ID})
			}
		}
	}
	if r.Limit != nil && *r.Limit > 0 {
		if r.Wharf != nil {
			r.Fraction = ptr(r.Wharf.Median / *r.Limit)
		}
		if r.Reference != nil {
			r.RefFraction = ptr(r.Reference.Median / *r.Limit)
		}
	}
	r.Errors = map[string]string{}
	for _, n := range []string{nameWharf, nameRef, nameNull, spec.LimitFrom} {
		if e, ok := errs[n]; ok && n != "" {
			r.Errors[n] = e
		}
	}
	if spec.RefMissing != "" {
		r.Errors[nameRef] = spec.RefMissing
	}
	if spec.Goal != nil {
		r.Goal = spec.Goal.Text
		ok, why := spec.Goal.eval(&r, h.res)
		r.Met, r.Why = &ok, why
	}
	return r
}

// metric summarizes one metric of the named server's samples (peak RSS
// from rss).
func (h *harness) metric(metric, name string, samples map[string][]sample, rss map[string]float64) *summary {
	if metric == metricRSS {
		if v, ok := rss[name]; ok {
			return summarize([]float64{v})
		}
		return nil
	}
	var xs []float64
	for _, s := range samples[name] {
		if v, ok := s[metric]; ok {
			xs = append(xs, v)
		}
	}
	return summarize(xs)
}

func ptr(v float64) *float64 { return &v }

// summarizeSamples turns repetitions into a summary per metric.
func summarizeSamples(ss []sample) map[string]*summary {
	by := map[string][]float64{}
	for _, s := range ss {
		for k, v := range s {
			by[k] = append(by[k], v)
		}
	}
	out := map[string]*summary{}
	for k, xs := range by {
		out[k] = summarize(xs)
	}
	return out
}

// brief formats a sample for the progress log: the rows' metrics first.
func brief(s sample, rows []rowSpec) string {
	var keys []string
	for _, r := range rows {
		if _, ok := s[r.Metric]; ok && !slices.Contains(keys, r.Metric) {
			keys = append(keys, r.Metric)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s ", k, num(s[k]))
	}
	return strings.TrimSpace(b.String())
}
