package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/servicetest"
)

func s3URL(srv *servicetest.S3, bucket string) string {
	return fmt.Sprintf("s3://%s/wharf?endpoint=%s&region=%s&path_style=true", bucket, url.QueryEscape(srv.Endpoint), srv.Region)
}

// A bucket that does not exist stops serve with one line that says what to
// fix.
func TestServe_MissingBucketIsOneLine(t *testing.T) {
	srv := servicetest.StartS3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	_, err := runRoot(t.Context(), "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--storage-url", s3URL(srv, "no-such-bucket"))
	if err == nil {
		t.Fatal("serve started without its bucket")
	}
	msg := err.Error()
	if !strings.Contains(msg, "bucket does not exist") || strings.Contains(msg, "\n") || strings.Contains(msg, srv.SecretKey) {
		t.Errorf("serve error = %q; want one line saying the bucket does not exist", msg)
	}
}

// gc on S3 prunes metadata but does not walk the bucket, and says so.
func TestGC_OnS3SkipsTheBlobSweep(t *testing.T) {
	srv := servicetest.StartS3(t)
	t.Setenv("WHARF_STORAGE_URL", s3URL(srv, srv.Bucket(t)))
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	out, err := runRoot(t.Context(), "gc", "--data-dir", t.TempDir())
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if !strings.Contains(out, "0 blob links no manifest uses") || !strings.Contains(out, "not walked") {
		t.Errorf("gc output = %q; want the links pruned and the sweep skipped", out)
	}
}
