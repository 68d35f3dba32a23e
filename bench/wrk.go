package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// runWrk measures manifest GETs with wrk (C, one epoll thread) as a second
// opinion on the Go load generator: if wrk, which spends far less CPU per
// request, finds a much higher rate, the Go generator was the bottleneck.
func runWrk(ctx context.Context, bin, url string, conns int, dur time.Duration, pid int) (sample, error) {
	secs := max(1, int(dur.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, bin, "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", secs),
		"--latency", "-H", "Accept: "+v1.MediaTypeImageManifest, url)
	srv0, _ := procCPU(pid)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0).Seconds()
	srv1, _ := procCPU(pid)
	if err != nil {
		return nil, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	s := sample{
		"wrk_GET_gen_cpu": (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds() / wall,
		"wrk_GET_srv_cpu": (srv1 - srv0).Seconds() / wall,
	}
	text := string(out)
	if m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindStringSubmatch(text); m != nil {
		s["wrk_GET_rps"], _ = strconv.ParseFloat(m[1], 64)
	} else {
		return nil, fmt.Errorf("wrk: no Requests/sec in output:\n%s", text)
	}
	if m := regexp.MustCompile(`(?m)^\s*99%\s+([0-9.]+)(us|ms|s)\s*$`).FindStringSubmatch(text); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		s["wrk_GET_p99_ms"] = v * map[string]float64{"us": 1e-3, "ms": 1, "s": 1e3}[m[2]]
	}
	if strings.Contains(text, "Non-2xx or 3xx responses") {
		return s, fmt.Errorf("wrk: non-2xx answers:\n%s", text)
	}
	return s, nil
}
