package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profile keeps wharf busy with sc's workload while it takes a CPU profile
// and an allocation profile from wharf's pprof listener (--debug-addr),
// saves both, and summarises them with go tool pprof. These runs come after
// the measured repetitions, so profiling never touches a reported figure.
func (h *harness) profile(ctx context.Context, sc *scenario, t *target, reps int) (profileResult, error) {
	secs := h.plan.ProfileSeconds
	dir := filepath.Join(h.outDir, "profiles", h.plan.Mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return profileResult{}, err
	}
	h.progress("  profiling wharf for %ds under %s", secs, sc.ID)
	pr := profileResult{Scenario: sc.ID, Seconds: secs,
		CPU: filepath.Join(dir, sc.ID+".cpu.pb.gz"), Allocs: filepath.Join(dir, sc.ID+".allocs.pb.gz")}
	done := make(chan error, 2)
	for kind, path := range map[string]string{"profile": pr.CPU, "allocs": pr.Allocs} {
		go func() {
			done <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", t.srv.debugAddr, kind, secs), path, secs)
		}()
	}
	var errs []string
	var measureErr error
	for rep, pending := reps+100, 2; pending > 0; rep++ {
		select {
		case err := <-done:
			pending--
			if err != nil {
				errs = append(errs, err.Error())
			}
			continue
		default:
		}
		if measureErr != nil {
			if err := <-done; err != nil {
				errs = append(errs, err.Error())
			}
			pending--
			continue
		}
		_, measureErr = sc.Measure(ctx, t, rep)
	}
	if measureErr != nil {
		errs = append(errs, "workload: "+measureErr.Error())
	}
	if len(errs) > 0 {
		return pr, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	pr.CPUTop = pprofTop(ctx, h.fleet.wharfBin, pr.CPU)
	pr.AllocTop = pprofTop(ctx, h.fleet.wharfBin, pr.Allocs, "-sample_index=alloc_space")
	if rel, err := filepath.Rel(h.outDir, pr.CPU); err == nil {
		pr.CPU = rel
	}
	if rel, err := filepath.Rel(h.outDir, pr.Allocs); err == nil {
		pr.Allocs = rel
	}
	return pr, nil
}

func fetchProfile(ctx context.Context, url, path string, secs int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+60)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop is the head of `go tool pprof -top` for a profile.
func pprofTop(ctx context.Context, bin, path string, extra ...string) string {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=25"}, extra...)
	args = append(args, bin, path)
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
