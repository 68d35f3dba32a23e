package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The garbage collection rows (issue 14): the reference's offline
// `registry garbage-collect --delete-untagged` against the collection that
// runs inside wharf serve, on the same data set, and what wharf's run costs
// the pushes and pulls that go on meanwhile.

// gcGrace is the grace wharf's collection runs with in this scenario (its
// default is an hour, which would keep everything just seeded). Before a
// collection the harness waits until the seed is this old, untimed.
const gcGrace = 2 * time.Second

// gcLoadClients push and pull while wharf collects.
const gcLoadClients = 4

func (h *harness) gcScenario() *scenario {
	p := h.plan
	title := fmt.Sprintf("11a. garbage collection of %d repositories, a third of them deleted", p.GCRepos)
	sc := &scenario{
		ID: "gc", Title: title,
		// Scheduled runs off: the harness starts each one. Untagged
		// manifests as old as the grace go, as the reference's
		// --delete-untagged removes every one.
		WharfArgs: []string{"--gc-interval", "0", "--gc-grace", gcGrace.String(), "--gc-untagged-age", gcGrace.String()},
		Rows: []rowSpec{
			{Metric: "gc_s", Title: title, Unit: "s", Goal: goalGC},
			{Metric: "load_pct", Unit: "%", Higher: true, Goal: goalGCLoad,
				Title: fmt.Sprintf("11b. push+pull rate of %d clients during wharf's collection, %% of the rate without", gcLoadClients)},
		},
	}
	// Every repetition seeds its own repositories and deletes a third of
	// them: a collection destroys what the next one would need.
	if h.opts.quick && h.opts.reps == 0 {
		sc.Reps = 1
	}
	sc.Measure = func(ctx context.Context, t *target, rep int) (sample, error) {
		if t.name == nameRef {
			return h.measureRefGC(ctx, t, rep)
		}
		return h.measureWharfGC(ctx, t, rep)
	}
	return sc
}

// gcSet is one seeded data set: its repositories, and which were deleted.
type gcSet struct {
	prefix string
	images []image
}

func (s gcSet) repo(i int) string { return fmt.Sprintf("%s/r%05d", s.prefix, i) }

// deleted says whether the seed deleted repository i's image.
func (gcSet) deleted(i int) bool { return i%3 == 0 }

// seedGC pushes one image of its own (a layer and a config) to each of
// p.GCRepos repositories, then deletes the manifest of every third by
// digest through the API, so that both registries hold the same blobs and
// the same dead third. It returns when the last write was answered.
func (h *harness) seedGC(ctx context.Context, t *target, prefix string, seed uint64) (gcSet, error) {
	p := h.plan
	set := gcSet{prefix: prefix, images: make([]image, p.GCRepos)}
	for i := range set.images {
		set.images[i] = newImage(seed<<24|uint64(i), 1, p.GCLayer)
	}
	c := newRegClient(t.srv.base, p.SetupClients, 64<<10)
	defer c.close()
	err := forEach(ctx, len(set.images), p.SetupClients, func(ctx context.Context, i int) error {
		return c.pushImage(ctx, set.repo(i), "latest", set.images[i], false)
	})
	if err != nil {
		return set, fmt.Errorf("seeding: %w", err)
	}
	err = forEach(ctx, len(set.images), p.SetupClients, func(ctx context.Context, i int) error {
		if !set.deleted(i) {
			return nil
		}
		u := c.url("/v2/" + set.repo(i) + "/manifests/" + sha256Digest(set.images[i].manifest))
		req, err := c.newRequest(ctx, http.MethodDelete, u, nil, 0)
		if err != nil {
			return err
		}
		_, err = c.do(req, http.StatusAccepted)
		return err
	})
	if err != nil {
		return set, fmt.Errorf("deleting a third: %w", err)
	}
	return set, nil
}

// checkKept pulls a sample of the images the seed kept: a collection that
// took a live blob fails the scenario.
func (h *harness) checkKept(ctx context.Context, t *target, set gcSet) error {
	c := newRegClient(t.srv.base, 1, 64<<10)
	defer c.close()
	buf := make([]byte, 64<<10)
	step := max(1, len(set.images)/50)
	for i := 1; i < len(set.images); i += step {
		if set.deleted(i) {
			continue
		}
		im := set.images[i]
		if err := pullImage(ctx, c, set.repo(i), "latest", im, buf); err != nil {
			return fmt.Errorf("after the collection: %w", err)
		}
	}
	return nil
}

// pullImage GETs the manifest by tag and the image's first layer.
func pullImage(ctx context.Context, c *regClient, repo, tag string, im image, buf []byte) error {
	req, err := c.newRequest(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/"+tag), nil, 0)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	if _, err := c.do(req, http.StatusOK); err != nil {
		return err
	}
	n, err := c.getBlob(ctx, repo, im.layerDigests[0], buf)
	if err == nil && n != int64(len(im.layers[0])) {
		err = fmt.Errorf("GET %s layer: %d bytes, want %d", repo, n, len(im.layers[0]))
	}
	return err
}

// measureRefGC seeds the reference and times its offline collection, run
// as its documentation says: `registry garbage-collect --delete-untagged`
// over its configuration, with nothing writing meanwhile (the server is up
// but idle, which costs the collection nothing).
func (h *harness) measureRefGC(ctx context.Context, t *target, rep int) (sample, error) {
	set, err := h.seedGC(ctx, t, fmt.Sprintf("gc%d", rep), uint64(rep)+1)
	if err != nil {
		return nil, err
	}
	before, err := dirBytes(t.srv.dataDir)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(filepath.Dir(t.srv.dataDir), "reference.yml")
	cmd := exec.CommandContext(ctx, h.fleet.refBin, "garbage-collect", "--delete-untagged", "--quiet", cfg)
	cmd.Env = append(cleanEnv(), "OTEL_TRACES_EXPORTER=none")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	el := time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("registry garbage-collect: %w: %.600s", err, out)
	}
	after, err := dirBytes(t.srv.dataDir)
	if err != nil {
		return nil, err
	}
	if err := h.checkKept(ctx, t, set); err != nil {
		return nil, err
	}
	return sample{"gc_s": el.Seconds(), "reclaimed_mib": float64(before-after) / (1 << 20)}, nil
}

// measureWharfGC seeds wharf twice. The first set is collected with
// nothing else going on: the time of that run, from the admin's POST to
// its finished report, is the row the reference is compared with. The
// second is collected while clients push and pull, and their rate is
// compared with their rate just before, on the same data.
func (h *harness) measureWharfGC(ctx context.Context, t *target, rep int) (sample, error) {
	s := sample{}
	set, err := h.seedGC(ctx, t, fmt.Sprintf("gc%d", rep), uint64(rep)+1)
	if err != nil {
		return nil, err
	}
	waitGrace(ctx)
	run, el, err := runWharfGC(ctx, t)
	if err != nil {
		return nil, err
	}
	if err := h.checkKept(ctx, t, set); err != nil {
		return nil, err
	}
	s["gc_s"], s["reclaimed_mib"] = el.Seconds(), float64(run.BytesReclaimed)/(1<<20)
	s["manifests_deleted"], s["blobs_deleted"] = float64(run.ManifestsDeleted), float64(run.BlobsDeleted)

	if _, err := h.seedGC(ctx, t, fmt.Sprintf("gc%dload", rep), uint64(rep)+1<<20); err != nil {
		return nil, err
	}
	waitGrace(ctx)
	ld := newGCLoad(t, uint64(rep))
	defer ld.c.close()
	base, err := ld.run(ctx, func(ctx context.Context) error {
		// As long as the collection took alone: the same window.
		select {
		case <-time.After(max(el, h.plan.GCLoadWindow)):
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push+pull without a collection: %w", err)
	}
	var loadedRun gcRun
	during, err := ld.run(ctx, func(ctx context.Context) error {
		var err error
		loadedRun, _, err = runWharfGC(ctx, t)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("push+pull during a collection: %w", err)
	}
	s["load_pct"] = 100 * during.rate() / base.rate()
	s["load_base_ops_s"], s["load_gc_ops_s"] = base.rate(), during.rate()
	s["load_base_p99_ms"], s["load_gc_p99_ms"] = ms(percentile(base.lat, 0.99)), ms(percentile(during.lat, 0.99))
	s["load_gc_window_s"] = during.window.Seconds()
	s["loaded_gc_reclaimed_mib"] = float64(loadedRun.BytesReclaimed) / (1 << 20)
	return s, nil
}

// waitGrace waits until what was just seeded is older than wharf's grace.
func waitGrace(ctx context.Context) {
	select {
	case <-time.After(gcGrace + 100*time.Millisecond):
	case <-ctx.Done():
	}
}

// gcRun is the part of wharf's run report the scenario reads.
type gcRun struct {
	Outcome          string `json:"outcome"`
	Error            string `json:"error"`
	ManifestsDeleted int64  `json:"manifests_deleted"`
	BlobsDeleted     int64  `json:"blobs_deleted"`
	BytesReclaimed   int64  `json:"bytes_reclaimed"`
}

// runWharfGC asks serve for a collection and waits for its report, as an
// admin's script does (POST /v2/admin/gc/runs?wait=true).
func runWharfGC(ctx context.Context, t *target) (gcRun, time.Duration, error) {
	var run gcRun
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.srv.base+"/v2/admin/gc/runs?wait=true", strings.NewReader("{}"))
	if err != nil {
		return run, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return run, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	el := time.Since(t0)
	if err != nil {
		return run, el, err
	}
	if resp.StatusCode != http.StatusCreated {
		return run, el, &statusError{req.Method, req.URL.Redacted(), resp.StatusCode, string(body[:min(len(body), 512)])}
	}
	if err := json.Unmarshal(body, &run); err != nil {
		return run, el, fmt.Errorf("gc run report: %w", err)
	}
	if run.Outcome != "ok" {
		return run, el, fmt.Errorf("gc run %s: %s", run.Outcome, run.Error)
	}
	if run.BlobsDeleted == 0 {
		return run, el, errors.New("gc run deleted no blobs: the seed's deleted third is still there")
	}
	return run, el, nil
}

// gcLoad is the pushes and pulls of gcLoadClients clients: each operation
// pushes a small image of its own (layer, config, manifest by tag) and
// pulls it back.
type gcLoad struct {
	c    *regClient
	seed uint64
	next atomic.Uint64
}

type loadWindow struct {
	ops    int
	window time.Duration
	lat    []time.Duration
}

func (w loadWindow) rate() float64 { return float64(w.ops) / w.window.Seconds() }

func newGCLoad(t *target, seed uint64) *gcLoad {
	return &gcLoad{c: newRegClient(t.srv.base, gcLoadClients, 64<<10), seed: seed}
}

// run keeps the clients busy until during returns, and counts the
// operations that ended meanwhile. Any refused request is an error.
func (l *gcLoad) run(ctx context.Context, during func(context.Context) error) (loadWindow, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var w loadWindow
	var firstErr error
	var wg sync.WaitGroup
	done := make(chan struct{})
	buf := func() []byte { return make([]byte, 16<<10) }
	for range gcLoadClients {
		wg.Go(func() {
			b := buf()
			for {
				select {
				case <-done:
					return
				default:
				}
				i := l.next.Add(1)
				im := newImage(1<<40|l.seed<<32|i, 1, 1024)
				repo := fmt.Sprintf("gcload/c%d", i%gcLoadClients)
				t0 := time.Now()
				err := l.c.pushImage(ctx, repo, fmt.Sprintf("v%d", i), im, false)
				if err == nil {
					err = pullImage(ctx, l.c, repo, fmt.Sprintf("v%d", i), im, b)
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil && ctx.Err() == nil {
					firstErr = err
				}
				if err == nil {
					select {
					case <-done:
					default:
						w.ops++
						w.lat = append(w.lat, d)
					}
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	// Warm up before the window opens: a collection takes a fraction of
	// a second, and a window that opened with the clients' first requests
	// would measure their start, not the collection.
	warm := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		ready := w.ops >= gcLoadClients || firstErr != nil
		mu.Unlock()
		if ready || time.Now().After(warm) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	w.ops, w.lat = 0, nil
	t0 := time.Now()
	mu.Unlock()
	err := during(ctx)
	mu.Lock()
	w.window = time.Since(t0)
	close(done)
	mu.Unlock()
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	return w, err
}

// dirBytes is the size of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}
