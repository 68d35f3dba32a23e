// Package servicetest starts the real external servers that the shared-
// storage drivers are tested against (an S3 gateway, PostgreSQL) as
// throwaway processes on loopback.
//
// `go test ./...` needs no server: where one is not installed, a test that
// asks for it is skipped. `make test` installs them and sets
// WHARF_TEST_SERVICES=require, under which a missing server fails the test
// instead, so a green CI run means the suites ran.
package servicetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireEnv makes missing servers fail instead of skip.
const requireEnv = "WHARF_TEST_SERVICES"

// DefaultBinDir is where test/e2e/setup.sh installs the servers it builds.
const DefaultBinDir = "/var/cache/wharf-test/bin"

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
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	root      string // a sub-directory is a bucket
}

// StartS3 starts versitygw over a temporary directory and stops it when the
// test ends. The binary comes from $WHARF_VERSITYGW, else DefaultBinDir,
// else PATH.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := os.Getenv("WHARF_VERSITYGW")
	if bin == "" {
		bin = filepath.Join(DefaultBinDir, "versitygw")
		if _, err := os.Stat(bin); err != nil {
			bin = "versitygw"
		}
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		missing(t, "versitygw", err.Error())
	}
	s := &S3{Region: "us-east-1", AccessKey: "wharf-test-" + strings.ToLower(rand.Text()[:8]), SecretKey: rand.Text(), root: t.TempDir()}
	addr := freeAddr(t)
	s.Endpoint = "http://" + addr
	var logs bytes.Buffer
	cmd := exec.Command(path, "--port", addr, "posix", s.root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	waitListening(t, addr, exited, &logs)
	return s
}

// Bucket makes a new empty bucket and returns its name.
func (s *S3) Bucket(t testing.TB) string {
	t.Helper()
	name := "b-" + strings.ToLower(rand.Text()[:12])
	if err := os.Mkdir(filepath.Join(s.root, name), 0o755); err != nil {
		t.Fatal(err)
	}
	return name
}

// Env is the AWS environment variables for s's credentials.
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

// URL is the wharf storage URL of bucket (with an optional prefix).
func (s *S3) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s.Endpoint + "&region=" + s.Region + "&path_style=true"
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListening waits until addr accepts connections, the process exits,
// or 30 s pass.
func waitListening(t testing.TB, addr string, exited <-chan error, logs *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("server on %s exited before listening: %v\n%s", addr, err, logs.String())
		case <-ctx.Done():
			t.Fatalf("server on %s not listening after 30s\n%s", addr, logs.String())
		case <-time.After(20 * time.Millisecond): // polling a starting process
		}
	}
}

// String describes s for test logs.
func (s *S3) String() string { return fmt.Sprintf("versitygw at %s", s.Endpoint) }
