package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStorageURL(t *testing.T) {
	const s3 = "s3://images/reg?endpoint=http://127.0.0.1:7070&region=eu-1&path_style=true"
	tests := []struct {
		name       string
		flags      []string
		env        map[string]string
		yaml       string
		wantDriver string
		wantURL    string
	}{
		{"default is the data directory's blobs", nil, nil, "", "filesystem", filepath.Join("d", "blobs")},
		{"flag names S3", []string{"--storage-url", s3}, nil, "", "s3", s3},
		{"environment", nil, map[string]string{"WHARF_STORAGE_URL": s3}, "", "s3", s3},
		{"YAML", nil, nil, "storage:\n  url: " + s3 + "\n", "s3", s3},
		{"a path is a directory", []string{"--storage-url", "/srv/blobs"}, nil, "", "filesystem", "/srv/blobs"},
		{"flag beats environment", []string{"--storage-url", s3}, map[string]string{"WHARF_STORAGE_URL": "/x"}, "", "s3", s3},
		{"environment beats YAML", nil, map[string]string{"WHARF_STORAGE_URL": s3}, "storage:\n  url: /from-file\n", "s3", s3},
		{"YAML filesystem root still works", nil, nil, "storage:\n  filesystem:\n    root: /fast\n", "filesystem", "/fast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--data-dir", "d"}, tt.flags...)
			if tt.yaml != "" {
				args = append(args, "--config", writeFile(t, tt.yaml))
			}
			c, err := load(t, args, tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Storage.Driver != tt.wantDriver || c.Storage.URL != tt.wantURL {
				t.Errorf("driver, url = %q, %q; want %q, %q", c.Storage.Driver, c.Storage.URL, tt.wantDriver, tt.wantURL)
			}
			if tt.wantDriver == "filesystem" && c.Storage.Filesystem.Root != tt.wantURL {
				t.Errorf("filesystem root = %q; want %q", c.Storage.Filesystem.Root, tt.wantURL)
			}
		})
	}
}

func TestStorageURL_S3Credentials(t *testing.T) {
	file := writeFile(t, "storage:\n  url: s3://b?endpoint=http://h:1\n  s3:\n    access_key: AK\n    secret_key: SK\n")
	c, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.S3.AccessKey != "AK" || c.Storage.S3.SecretKey != "SK" {
		t.Errorf("s3 keys = %q, %q; want AK, SK", c.Storage.S3.AccessKey, c.Storage.S3.SecretKey)
	}
	file = writeFile(t, "storage:\n  url: s3://b?endpoint=http://h:1\n  s3:\n    access_key: AK\n")
	if _, err := load(t, []string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), "secret_key") {
		t.Errorf("an access key without its secret: err = %v; want one naming secret_key", err)
	}
}

func TestStorageURL_InvalidS3URL(t *testing.T) {
	for _, u := range []string{"s3://", "s3://bucket", "s3://bucket/p?region=x", "s3://ak:sk@bucket?endpoint=http://h:1"} {
		_, err := load(t, []string{"--storage-url", u}, nil)
		if err == nil || !strings.Contains(err.Error(), "storage.url") {
			t.Errorf("Load with --storage-url %q: err = %v; want one naming storage.url", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "sk@") {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}

func TestStorageS3Redirect(t *testing.T) {
	const s3 = "s3://images?endpoint=http://10.0.0.5:7070"
	t.Run("off by default", func(t *testing.T) {
		c, err := load(t, []string{"--storage-url", s3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Storage.S3.Redirect || c.Storage.S3.PublicEndpoint != "" || c.Storage.S3.RedirectExpiry != 10*time.Minute {
			t.Errorf("s3 redirect defaults = %+v; want off, no public endpoint, 10m", c.Storage.S3)
		}
	})
	for _, tt := range []struct {
		name  string
		flags []string
		env   map[string]string
		yaml  string
	}{
		{"flags", []string{"--s3-redirect", "--s3-public-endpoint", "https://blobs.example.com", "--s3-redirect-expiry", "5m"}, nil, ""},
		{"environment", nil, map[string]string{"WHARF_S3_REDIRECT": "true", "WHARF_S3_PUBLIC_ENDPOINT": "https://blobs.example.com", "WHARF_S3_REDIRECT_EXPIRY": "5m"}, ""},
		{"YAML", nil, nil, "storage:\n  s3:\n    redirect: true\n    public_endpoint: https://blobs.example.com\n    redirect_expiry: 5m\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--storage-url", s3}, tt.flags...)
			if tt.yaml != "" {
				args = append(args, "--config", writeFile(t, tt.yaml))
			}
			c, err := load(t, args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Storage.S3; !got.Redirect || got.PublicEndpoint != "https://blobs.example.com" || got.RedirectExpiry != 5*time.Minute {
				t.Errorf("s3 redirect = %+v; want on, https://blobs.example.com, 5m", got)
			}
		})
	}
}

func TestStorageS3Redirect_Invalid(t *testing.T) {
	const s3 = "s3://images?endpoint=http://10.0.0.5:7070"
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"on the filesystem", []string{"--s3-redirect"}, "storage.s3.redirect"},
		{"public endpoint with a path", []string{"--storage-url", s3, "--s3-redirect", "--s3-public-endpoint", "https://h/bucket"}, "storage.s3.public_endpoint"},
		{"public endpoint not a URL", []string{"--storage-url", s3, "--s3-public-endpoint", "blobs.example.com"}, "storage.s3.public_endpoint"},
		{"expiry too short", []string{"--storage-url", s3, "--s3-redirect", "--s3-redirect-expiry", "10s"}, "storage.s3.redirect_expiry"},
		{"expiry too long", []string{"--storage-url", s3, "--s3-redirect", "--s3-redirect-expiry", "24h"}, "storage.s3.redirect_expiry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.args, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%v): err = %v; want one naming %s", tt.args, err, tt.want)
			}
		})
	}
}
