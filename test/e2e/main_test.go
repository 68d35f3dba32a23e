//go:build e2e

// Package e2e holds the end-to-end tests: each test starts a real
// `wharf serve` process and drives it with real clients (the OCI
// conformance suite, crane, the docker CLI).
//
// The tests sit behind the build tag e2e so that a plain `go test ./...`
// never needs those tools. Run them with
//
//	bash test/e2e/setup.sh                         # installs and starts the tools
//	go test -tags e2e -count=1 -v ./test/e2e/...
//
// A missing tool fails the test rather than skipping it: setup.sh
// guarantees them, and a green run must mean they ran.
//
// Set WHARF_E2E_BIN to a prebuilt wharf binary to skip the build.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wharfBin is the wharf binary under test, built once by TestMain.
var wharfBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// The PostgreSQL and S3 servers that internal/servicetest starts are
	// tools like any other here: missing, they fail the test, never skip it.
	if os.Getenv("WHARF_TEST_SERVICES") == "" {
		os.Setenv("WHARF_TEST_SERVICES", "require")
	}
	if bin := os.Getenv("WHARF_E2E_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: WHARF_E2E_BIN: %v\n", err)
			return 1
		}
		wharfBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "wharf-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	wharfBin = filepath.Join(dir, "wharf")
	if err := buildWharf(wharfBin); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	return m.Run()
}

// findModuleRoot is the directory of wharf's go.mod.
func findModuleRoot(ctx context.Context) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(gomod))), nil
}

// moduleRoot is findModuleRoot for a test.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := findModuleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildWharf compiles ./cmd/wharf from the module root into out.
func buildWharf(out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := findModuleRoot(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/wharf")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/wharf in %s: %w\n%s", root, err, b)
	}
	fmt.Printf("e2e: built %s in %s\n", out, time.Since(start).Round(time.Millisecond))
	return nil
}
