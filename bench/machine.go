package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// machine describes where the figures came from.
type machine struct {
	CPU     string  `json:"cpu"`
	Cores   int     `json:"cores"`
	MemGiB  float64 `json:"mem_gib"`
	Kernel  string  `json:"kernel"`
	DataFS  string  `json:"data_fs"`
	Go      string  `json:"go"`
	LoadAvg string  `json:"loadavg_at_start"`
}

func describeMachine(dataDir string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemGiB = kb / (1 << 20)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	m.DataFS = mountOf(dataDir)
	return m
}

// mountOf names the filesystem holding path: type, device, mount point.
func mountOf(path string) string {
	path, _ = filepath.EvalSymlinks(path)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	best, desc := "", "unknown"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 2 {
			continue
		}
		mp := a[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("%s on %s (mounted at %s)", b[0], b[1], mp)
		}
	}
	return desc
}

// gitDescribe names the wharf source that was measured: the commit of rev,
// or of HEAD with "+dirty" when the work tree (which was built) has changes.
func gitDescribe(root, rev string) string {
	r := rev
	if r == "" {
		r = "HEAD"
	}
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", r).Output()
	if err != nil {
		return "unknown"
	}
	d := "commit " + strings.TrimSpace(string(out))
	if rev != "" {
		return d
	}
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		d += " plus uncommitted changes in the work tree"
	}
	return d
}
