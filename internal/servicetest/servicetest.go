// Package servicetest starts the real external servers that the shared-
// storage drivers are tested against (an S3 gateway, PostgreSQL) as
// throwaway processes on loopback (package throwaway starts them; this
// package ties them to tests).
//
// `go test ./...` needs no server: where one is not installed, a test that
// asks for it is skipped. `make test` installs them and sets
// WHARF_TEST_SERVICES=require, under which a missing server fails the test
// instead, so a green CI run means the suites ran.
package servicetest

import (
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/throwaway"
)

// requireEnv makes missing servers fail instead of skip.
const requireEnv = "WHARF_TEST_SERVICES"

// DefaultBinDir is where test/e2e/setup.sh installs the servers it builds.
const DefaultBinDir = throwaway.DefaultBinDir

// missing skips or fails the test for a server that is not installed.
func missing(t testing.TB, what, hint string) {
	t.Helper()
	if os.Getenv(requireEnv) == "require" {
		t.Fatalf("%s is not installed (%s), and %s=require: run `bash test/e2e/setup.sh`", what, hint, requireEnv)
	}
	t.Skipf("%s is not installed (%s); `make test` installs it and runs this test", what, hint)
}

// S3 is a running S3-compatible server.
type S3 struct {
	*throwaway.S3
}

// StartS3 starts versitygw over a temporary directory and stops it when the
// test ends. The binary comes from $WHARF_VERSITYGW, else DefaultBinDir,
// else PATH.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s, err := throwaway.StartS3(t.Context(), t.TempDir())
	if errors.Is(err, throwaway.ErrNotInstalled) {
		missing(t, "versitygw", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &S3{s}
}

// Bucket makes a new empty bucket and returns its name.
func (s *S3) Bucket(t testing.TB) string {
	t.Helper()
	name := "b-" + strings.ToLower(rand.Text()[:12])
	if err := s.MakeBucket(name); err != nil {
		t.Fatal(err)
	}
	return name
}
