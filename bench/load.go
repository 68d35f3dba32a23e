package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a closed-loop load run measured inside its window.
type loadResult struct {
	Requests int
	Errors   int
	Window   time.Duration
	Latency  []time.Duration // sorted, requests that completed in the window
	Bytes    int64
	GenCPU   float64 // harness CPU in cores (1.0 = one core busy) during the window
	SrvCPU   float64 // server CPU in cores during the window
}

func (r loadResult) rps() float64 { return float64(r.Requests) / r.Window.Seconds() }

// cpuMeter samples the CPU time of the harness, of the server under test
// and of the whole machine, and of the external stores the server uses
// (the shared-storage section's PostgreSQL and S3 gateway), which would
// otherwise count as other processes' load.
type cpuMeter struct {
	pid           int
	stores        []int // root pids; their children count too
	gen, srv, all time.Duration
	st            time.Duration
	startWall     time.Time
	// storeCores is what the stores used, in cores, after stopAll.
	storeCores float64
}

func startCPU(pid int, stores ...int) *cpuMeter {
	m := &cpuMeter{pid: pid, stores: stores, gen: selfCPU(), all: machineBusy(), startWall: time.Now()}
	m.srv, _ = procCPU(pid)
	m.st = treeCPU(stores)
	return m
}

// stop returns the harness's and the server's CPU use in cores.
func (m *cpuMeter) stop() (gen, srv float64) {
	gen, srv, _ = m.stopAll()
	return gen, srv
}

// stopAll also returns what everything else on the machine used, in cores:
// other sessions, other processes. It is how a noisy measurement shows.
func (m *cpuMeter) stopAll() (gen, srv, other float64) {
	wall := time.Since(m.startWall).Seconds()
	s, _ := procCPU(m.pid)
	gen = (selfCPU() - m.gen).Seconds() / wall
	srv = (s - m.srv).Seconds() / wall
	if len(m.stores) > 0 {
		m.storeCores = max(0, (treeCPU(m.stores)-m.st).Seconds()/wall)
	}
	all := (machineBusy() - m.all).Seconds() / wall
	return gen, srv, max(0, all-gen-srv-m.storeCores)
}

// runLoad drives conns closed-loop clients, each on its own keep-alive
// connection, sending newReq's request again and again: warm-up first (to
// open the connections and let both sides settle), then a measured window
// of dur. Requests count when they complete inside the window.
func runLoad(ctx context.Context, hc *http.Client, pid, conns int, warmup, dur time.Duration,
	newReq func(context.Context) (*http.Request, error), want int) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	winStart, winEnd := start.Add(warmup), start.Add(warmup+dur)

	lats := make([][]time.Duration, conns)
	errs := make([]int, conns)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := newReq(ctx)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			lat := make([]time.Duration, 0, 1<<14)
			for {
				t0 := time.Now()
				if t0.After(winEnd) {
					break
				}
				resp, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != want {
						err = fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
					}
				}
				t1 := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs[w]++
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				if !t1.Before(winStart) && !t1.After(winEnd) {
					lat = append(lat, t1.Sub(t0))
				}
			}
			lats[w] = lat
		}()
	}
	cpu := make(chan [2]float64, 1)
	go func() {
		time.Sleep(time.Until(winStart))
		m := startCPU(pid)
		time.Sleep(time.Until(winEnd))
		gen, srv := m.stop()
		cpu <- [2]float64{gen, srv}
	}()
	wg.Wait()
	c := <-cpu
	res := loadResult{Window: dur, GenCPU: c[0], SrvCPU: c[1]}
	for w := range conns {
		res.Latency = append(res.Latency, lats[w]...)
		res.Errors += errs[w]
	}
	res.Requests = len(res.Latency)
	slices.Sort(res.Latency)
	if err, _ := firstErr.Load().(error); err != nil && (res.Requests == 0 || res.Errors > res.Requests/100) {
		return res, fmt.Errorf("%d errors, %d ok; first: %w", res.Errors, res.Requests, err)
	}
	return res, nil
}

// runStream has conns clients GET a blob again and again and counts the
// bytes that arrive inside the measured window.
func runStream(ctx context.Context, c *regClient, pid, conns int, warmup, dur time.Duration, repo, d string) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bytes atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for ctx.Err() == nil {
				req, err := c.newRequest(ctx, http.MethodGet, c.url("/v2/"+repo+"/blobs/"+d), nil, 0)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				resp, err := c.hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				if resp.StatusCode != http.StatusOK {
					firstErr.CompareAndSwap(nil, fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status))
					resp.Body.Close()
					return
				}
				for {
					n, err := resp.Body.Read(buf)
					bytes.Add(int64(n))
					if err != nil {
						break
					}
				}
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(warmup)
	b0, m := bytes.Load(), startCPU(pid)
	t0 := time.Now()
	time.Sleep(dur)
	b1, window := bytes.Load(), time.Since(t0)
	gen, srv := m.stop()
	cancel()
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return loadResult{}, err
	}
	return loadResult{Window: window, Bytes: b1 - b0, GenCPU: gen, SrvCPU: srv}, nil
}
