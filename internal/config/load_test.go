package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/wharf/wharf/internal/config"
)

// load parses args as `wharf serve` flags and loads with env as the only
// environment.
func load(t *testing.T, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return config.Load(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wharf.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad_Defaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":5000" || c.DataDir != "./wharf-data" || c.Validation.SparseManifests {
		t.Errorf("defaults = addr %q, data dir %q, sparse %v", c.Addr, c.DataDir, c.Validation.SparseManifests)
	}
	if c.Storage.Filesystem.Root != filepath.Join("wharf-data", "blobs") || c.Database.SQLite.Path != filepath.Join("wharf-data", "wharf.db") {
		t.Errorf("derived paths = %q, %q", c.Storage.Filesystem.Root, c.Database.SQLite.Path)
	}
	if c.Validation.MaxManifestBytes != 4<<20 || c.ShutdownTimeout != 30*time.Second || c.Uploads.PurgeAfter != 24*time.Hour {
		t.Errorf("limits = %d, %v, %v", c.Validation.MaxManifestBytes, c.ShutdownTimeout, c.Uploads.PurgeAfter)
	}
}

func TestLoad_Precedence(t *testing.T) {
	file := writeFile(t, "addr: 127.0.0.1:7001\ndata_dir: /from/file\nvalidation:\n  sparse_manifests: true\nlog:\n  level: warn\n")
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantAddr  string
		wantDir   string
		wantLevel string
	}{
		{"file over defaults", []string{"--config", file}, nil, "127.0.0.1:7001", "/from/file", "warn"},
		{"WHARF_CONFIG names the file", nil, map[string]string{"WHARF_CONFIG": file}, "127.0.0.1:7001", "/from/file", "warn"},
		{"env over file", []string{"--config", file}, map[string]string{"WHARF_ADDR": "127.0.0.1:7002", "WHARF_LOG_LEVEL": "debug"}, "127.0.0.1:7002", "/from/file", "debug"},
		{"flags over env", []string{"--config", file, "--addr", "127.0.0.1:7003", "--data-dir", "/from/flag"},
			map[string]string{"WHARF_ADDR": "127.0.0.1:7002", "WHARF_DATA_DIR": "/from/env"}, "127.0.0.1:7003", "/from/flag", "warn"},
		{"unset flags leave env alone", []string{"--log-level", "error"}, map[string]string{"WHARF_DATA_DIR": "/from/env"}, ":5000", "/from/env", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tt.wantAddr || c.DataDir != tt.wantDir || c.Log.Level != tt.wantLevel {
				t.Errorf("got addr %q dir %q level %q, want %q %q %q", c.Addr, c.DataDir, c.Log.Level, tt.wantAddr, tt.wantDir, tt.wantLevel)
			}
		})
	}
}

func TestLoad_SparseManifestsFromEveryLayer(t *testing.T) {
	file := writeFile(t, "validation:\n  sparse_manifests: true\n")
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want bool
	}{
		"flag":             {[]string{"--sparse-manifests"}, nil, true},
		"env":              {nil, map[string]string{"WHARF_SPARSE_MANIFESTS": "true"}, true},
		"file":             {[]string{"--config", file}, nil, true},
		"flag false wins":  {[]string{"--config", file, "--sparse-manifests=false"}, map[string]string{"WHARF_SPARSE_MANIFESTS": "true"}, false},
		"env false wins":   {[]string{"--config", file}, map[string]string{"WHARF_SPARSE_MANIFESTS": "0"}, false},
		"default is false": {nil, nil, false},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := load(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Validation.SparseManifests != tc.want {
				t.Errorf("sparse = %v, want %v", c.Validation.SparseManifests, tc.want)
			}
		})
	}
}

func TestLoad_RejectsBadInput(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		args     []string
		env      map[string]string
		wantText []string
	}{
		{name: "unknown YAML key", file: "adress: :5000\n", wantText: []string{"adress"}},
		{name: "unknown nested key", file: "validation:\n  sparse: true\n", wantText: []string{"sparse"}},
		{name: "bad env boolean", env: map[string]string{"WHARF_SPARSE_MANIFESTS": "maybe"}, wantText: []string{"WHARF_SPARSE_MANIFESTS", "maybe"}},
		{name: "bad env duration", env: map[string]string{"WHARF_SHUTDOWN_TIMEOUT": "soon"}, wantText: []string{"WHARF_SHUTDOWN_TIMEOUT"}},
		{name: "bad flag integer", args: []string{"--max-concurrent-requests", "many"}, wantText: []string{"--max-concurrent-requests"}},
		{name: "every problem at once", args: []string{"--addr", "nonsense", "--log-level", "loud", "--log-format", "xml"},
			wantText: []string{"addr", "nonsense", "log.level", "loud", "log.format", "xml"}},
		{name: "negative limit", env: map[string]string{"WHARF_MAX_CONCURRENT_REQUESTS": "-1"}, wantText: []string{"max_concurrent_requests"}},
		{name: "bad debug addr", args: []string{"--debug-addr", "6060"}, wantText: []string{"debug_addr"}},
		{name: "missing file", args: []string{"--config", "/does/not/exist.yaml"}, wantText: []string{"exist.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			_, err := load(t, args, tt.env)
			if err == nil {
				t.Fatal("Load succeeded; want an error")
			}
			for _, w := range tt.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoad_SecretKeyFromEnvOrFile(t *testing.T) {
	c, err := load(t, nil, map[string]string{"WHARF_SECRET_KEY": "a2V5"})
	if err != nil || c.SecretKey != "a2V5" {
		t.Fatalf("env: %q, %v", c.SecretKey, err)
	}
	c, err = load(t, []string{"--config", writeFile(t, "secret_key: ZmlsZQ==\n")}, nil)
	if err != nil || c.SecretKey != "ZmlsZQ==" {
		t.Fatalf("file: %q, %v", c.SecretKey, err)
	}
}
