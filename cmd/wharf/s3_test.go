package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/pflag"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/server"
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

// gc on S3 deletes the objects of blobs nothing references, which the
// database finds (nothing lists the bucket), and reports the bytes.
func TestGC_OnS3ReclaimsUnreferencedBlobs(t *testing.T) {
	srv := servicetest.StartS3(t)
	storage := s3URL(srv, srv.Bucket(t))
	dataDir := t.TempDir()
	t.Setenv("WHARF_STORAGE_URL", storage)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	cfg, err := config.Load(pflag.NewFlagSet("test", pflag.ContinueOnError), func(k string) (string, bool) {
		if k == "WHARF_DATA_DIR" {
			return dataDir, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := server.OpenRegistry(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// A layer whose push never sent its manifest.
	layer := bytes.Repeat([]byte("layer"), 100_000)
	d := digest.FromBytes(layer)
	if _, err := reg.PutBlob(t.Context(), "team/app", d, bytes.NewReader(layer), int64(len(layer))); err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := runRoot(t.Context(), "gc", "--data-dir", dataDir, "--grace", "1ns")
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	for _, want := range []string{"Deleted 1 blob links no manifest uses", "Deleted 1 of 1 blobs, 0.5 MB"} {
		if !strings.Contains(out, want) {
			t.Errorf("gc output = %q; want %q", out, want)
		}
	}
	s3cfg, err := s3.ParseURL(storage)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := s3.New(t.Context(), s3cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("object of the collected blob: Stat = %v; want it deleted", err)
	}
}
