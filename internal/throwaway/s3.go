package throwaway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// S3 is a running versitygw: an S3 gateway over a directory, in which each
// sub-directory is a bucket.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string

	root   string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *tail
}

// VersitygwPath finds the versitygw binary: $WHARF_VERSITYGW, else
// DefaultBinDir, else PATH. A missing one is an error wrapping
// ErrNotInstalled.
func VersitygwPath() (string, error) {
	bin := os.Getenv("WHARF_VERSITYGW")
	if bin == "" {
		bin = filepath.Join(DefaultBinDir, "versitygw")
		if _, err := os.Stat(bin); err != nil {
			bin = "versitygw"
		}
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("versitygw is %w (bash test/e2e/setup.sh installs it in %s): %v", ErrNotInstalled, DefaultBinDir, err)
	}
	return path, nil
}

// StartS3 starts versitygw over root (which must exist) with fresh root
// credentials and waits until it listens. Stop ends it.
func StartS3(ctx context.Context, root string) (*S3, error) {
	path, err := VersitygwPath()
	if err != nil {
		return nil, err
	}
	addr, err := FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	s := &S3{Endpoint: "http://" + addr, Region: "us-east-1",
		AccessKey: "wharf-test-" + strings.ToLower(rand.Text()[:8]), SecretKey: rand.Text(),
		root: root, exited: make(chan struct{}), logs: &tail{}}
	s.cmd = exec.Command(path, "--port", addr, "posix", root)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	var waitErr error
	go func() { waitErr = s.cmd.Wait(); close(s.exited) }()
	if err := WaitListening(ctx, addr, s.exited); err != nil {
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w: %v", err, waitErr)
		} else {
			s.Stop()
		}
		return nil, fmt.Errorf("versitygw on %s %v\n%s", addr, err, s.logs)
	}
	return s, nil
}

// MakeBucket creates the empty bucket name.
func (s *S3) MakeBucket(name string) error {
	return os.Mkdir(filepath.Join(s.root, name), 0o755)
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

// Pid is the gateway's process id.
func (s *S3) Pid() int { return s.cmd.Process.Pid }

// Stop kills the gateway and waits for it to exit.
func (s *S3) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// String describes s for logs.
func (s *S3) String() string { return fmt.Sprintf("versitygw at %s", s.Endpoint) }
