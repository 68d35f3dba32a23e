// Package reference installs and finds the reference registry (CNCF
// distribution) that the benchmarks compare wharf with and the import
// end-to-end test writes its data with: one version, one cache location.
package reference

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The reference registry: CNCF distribution, installed with go install.
const (
	Module  = "github.com/distribution/distribution/v3/cmd/registry"
	Version = "v3.1.2"
)

// DefaultCacheDir is ~/.cache/wharf-bench (or $XDG_CACHE_HOME/wharf-bench).
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "wharf-bench")
}

// Path is where Ensure puts the binary under cacheDir.
func Path(cacheDir string) string {
	return filepath.Join(cacheDir, "registry-"+Version, "registry")
}

// Ensure returns the reference registry binary, installing it into the
// cache directory with go install when it is not there yet.
func Ensure(ctx context.Context, cacheDir string, progress func(string, ...any)) (string, error) {
	bin := Path(cacheDir)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	dir := filepath.Dir(bin)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	// Installed beside, then renamed into place, so that an interrupted
	// install never leaves a half-written binary where Path looks.
	tmp, err := os.MkdirTemp(cacheDir, "install-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	progress("installing the reference registry: go install %s@%s into %s (a few minutes the first time)", Module, Version, dir)
	cmd := exec.CommandContext(ctx, "go", "install", Module+"@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	cmd.Dir = tmp // outside any module
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", Module, Version, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return bin, nil
}
