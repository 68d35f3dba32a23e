package config_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/wharf/wharf/internal/config"
)

// layered names one setting in each layer: its YAML, its environment
// variable, its flag, and a value for each that the others cannot mistake.
type layered struct {
	env, flag                string
	yaml                     string // a file setting the field to fileVal
	fileVal, envVal, flagVal string
	get                      func(config.Config) string
}

var everySetting = []layered{
	{"WHARF_ADDR", "addr", "addr: 127.0.0.1:7001\n", "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003",
		func(c config.Config) string { return c.Addr }},
	{"WHARF_DATA_DIR", "data-dir", "data_dir: /file\n", "/file", "/env", "/flag",
		func(c config.Config) string { return c.DataDir }},
	{"WHARF_DEBUG_ADDR", "debug-addr", "debug_addr: 127.0.0.1:6061\n", "127.0.0.1:6061", "127.0.0.1:6062", "127.0.0.1:6063",
		func(c config.Config) string { return c.DebugAddr }},
	{"WHARF_METRICS_ADDR", "metrics-addr", "metrics_addr: 127.0.0.1:9091\n", "127.0.0.1:9091", "127.0.0.1:9092", "127.0.0.1:9093",
		func(c config.Config) string { return c.MetricsAddr }},
	{"WHARF_SHUTDOWN_TIMEOUT", "shutdown-timeout", "shutdown_timeout: 1m\n", "1m0s", "2m0s", "3m0s",
		func(c config.Config) string { return c.ShutdownTimeout.String() }},
	{"WHARF_LOG_LEVEL", "log-level", "log:\n  level: warn\n", "warn", "error", "debug",
		func(c config.Config) string { return c.Log.Level }},
	{"WHARF_LOG_FORMAT", "log-format", "log:\n  format: json\n", "json", "text", "json",
		func(c config.Config) string { return c.Log.Format }},
	{"WHARF_UPLOAD_PURGE_AFTER", "upload-purge-after", "uploads:\n  purge_after: 1h\n", "1h0m0s", "2h0m0s", "0s",
		func(c config.Config) string { return c.Uploads.PurgeAfter.String() }},
	{"WHARF_GC_INTERVAL", "gc-interval", "gc:\n  interval: 2h\n", "2h0m0s", "30m0s", "0s",
		func(c config.Config) string { return c.GC.Interval.String() }},
	{"WHARF_GC_UNTAGGED_AGE", "gc-untagged-age", "gc:\n  untagged_age: 48h\n", "48h0m0s", "1h0m0s", "0s",
		func(c config.Config) string { return c.GC.UntaggedAge.String() }},
	{"WHARF_GC_GRACE", "gc-grace", "gc:\n  grace: 2h\n", "2h0m0s", "3h0m0s", "10m0s",
		func(c config.Config) string { return c.GC.Grace.String() }},
	{"WHARF_RETENTION_INTERVAL", "retention-interval", "retention:\n  interval: 1h\n", "1h0m0s", "2h0m0s", "0s",
		func(c config.Config) string { return c.Retention.Interval.String() }},
	{"WHARF_REPLICATION_RECONCILE_INTERVAL", "replication-reconcile-interval", "replication:\n  reconcile_interval: 2h\n", "2h0m0s", "30m0s", "0s",
		func(c config.Config) string { return c.Replication.ReconcileInterval.String() }},
	{"WHARF_REPLICATION_BACKOFF", "replication-backoff", "replication:\n  backoff: 5s\n", "5s", "20s", "1m0s",
		func(c config.Config) string { return c.Replication.Backoff.String() }},
	{"WHARF_MAX_CONCURRENT_REQUESTS", "max-concurrent-requests", "limits:\n  max_concurrent_requests: 10\n", "10", "20", "30",
		func(c config.Config) string { return strconv.Itoa(c.Limits.MaxConcurrentRequests) }},
	{"WHARF_IDLE_TIMEOUT", "idle-timeout", "limits:\n  idle_timeout: 10s\n", "10s", "20s", "0s",
		func(c config.Config) string { return c.Limits.IdleTimeout.String() }},
	{"WHARF_SPARSE_MANIFESTS", "sparse-manifests", "validation:\n  sparse_manifests: true\n", "true", "false", "true",
		func(c config.Config) string { return strconv.FormatBool(c.Validation.SparseManifests) }},
	{"WHARF_LOGIN_REFRESH_TOKENS", "login-refresh-tokens", "auth:\n  login_refresh_tokens: true\n", "true", "false", "true",
		func(c config.Config) string { return strconv.FormatBool(c.Auth.LoginRefreshTokens) }},
}

// TestLoad_EverySettingHonoursPrecedence sets each field in the file, then
// the environment, then a flag, and checks that the later layer wins: the
// file key, the variable and the flag all reach the same field.
func TestLoad_EverySettingHonoursPrecedence(t *testing.T) {
	for _, s := range everySetting {
		t.Run(s.env, func(t *testing.T) {
			file := writeFile(t, s.yaml)
			def := s.get(config.Default())
			for _, step := range []struct {
				layer string
				args  []string
				env   map[string]string
				want  string
			}{
				{"default", nil, nil, def},
				{"file", []string{"--config", file}, nil, s.fileVal},
				{"env over file", []string{"--config", file}, map[string]string{s.env: s.envVal}, s.envVal},
				{"flag over env", []string{"--config", file, "--" + s.flag + "=" + s.flagVal}, map[string]string{s.env: s.envVal}, s.flagVal},
				{"flag over file", []string{"--config", file, "--" + s.flag + "=" + s.flagVal}, nil, s.flagVal},
			} {
				if step.layer == "flag over file" && s.flagVal == s.fileVal {
					continue // a two-valued setting: the step would prove nothing
				}
				c, err := load(t, step.args, step.env)
				if err != nil {
					t.Fatalf("%s: %v", step.layer, err)
				}
				if got := s.get(c); got != step.want {
					t.Errorf("%s: got %q, want %q", step.layer, got, step.want)
				}
			}
		})
	}
}

func TestBindFlags_EachFlagNamesItsVariable(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.BindFlags(fs)
	for _, s := range everySetting {
		f := fs.Lookup(s.flag)
		if f == nil {
			t.Errorf("no --%s flag", s.flag)
			continue
		}
		if !strings.Contains(f.Usage, s.env) {
			t.Errorf("--%s usage %q does not mention %s", s.flag, f.Usage, s.env)
		}
	}
	if f := fs.Lookup(config.FlagConfig); f == nil || !strings.Contains(f.Usage, "WHARF_CONFIG") {
		t.Errorf("--config flag missing or does not mention WHARF_CONFIG")
	}
	if f := fs.Lookup("addr"); f != nil && f.DefValue != ":5000" {
		t.Errorf("--addr shows default %q, want :5000", f.DefValue)
	}
}

func TestLoad_ConfigFlagOverridesWHARF_CONFIG(t *testing.T) {
	fromEnv := writeFile(t, "addr: 127.0.0.1:7001\n")
	fromFlag := writeFile(t, "addr: 127.0.0.1:7002\n")
	c, err := load(t, []string{"--config", fromFlag}, map[string]string{"WHARF_CONFIG": fromEnv})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7002" {
		t.Errorf("addr = %q, want the --config file's 127.0.0.1:7002", c.Addr)
	}
}

func TestLoad_EmptyFileKeepsDefaults(t *testing.T) {
	c, err := load(t, []string{"--config", writeFile(t, "")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":5000" || c.DataDir != "./wharf-data" || c.ShutdownTimeout != 30*time.Second {
		t.Errorf("empty file changed defaults: %+v", c)
	}
}

func TestLoad_DerivedPathsFollowDataDir(t *testing.T) {
	c, err := load(t, []string{"--data-dir", "/srv/wharf"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Filesystem.Root != "/srv/wharf/blobs" || c.Database.SQLite.Path != "/srv/wharf/wharf.db" {
		t.Errorf("derived paths = %q, %q", c.Storage.Filesystem.Root, c.Database.SQLite.Path)
	}

	file := writeFile(t, "storage:\n  filesystem:\n    root: /fast/blobs\ndatabase:\n  sqlite:\n    path: /safe/wharf.db\n")
	c, err = load(t, []string{"--config", file, "--data-dir", "/srv/wharf"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Filesystem.Root != "/fast/blobs" || c.Database.SQLite.Path != "/safe/wharf.db" {
		t.Errorf("explicit paths overridden: %q, %q", c.Storage.Filesystem.Root, c.Database.SQLite.Path)
	}
}

func TestLoad_MissingFileIsNotExist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"--config":     {[]string{"--config", path}, nil},
		"WHARF_CONFIG": {nil, map[string]string{"WHARF_CONFIG": path}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env)
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("err = %v, want fs.ErrNotExist", err)
			}
		})
	}
}

// TestLoad_RejectsBadYAML holds the file strict: unknown keys, wrong
// types, bare numbers where a duration is meant (30 would be 30ns) and
// repeated keys are errors that name the file and what is wrong.
func TestLoad_RejectsBadYAML(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		wantText   []string
	}{
		{"unknown top-level key", "adress: :5000\n", []string{"adress"}},
		{"unknown key deep down", "storage:\n  filesystem:\n    rot: /x\n", []string{"rot"}},
		{"flag spelling is not a key", "data-dir: /x\n", []string{"data-dir"}},
		{"wrong type", "addr: [1, 2]\n", []string{"line 1", "string"}},
		{"bare number for a duration", "shutdown_timeout: 30\n", []string{"30"}},
		{"bad duration", "uploads:\n  purge_after: soon\n", []string{"soon"}},
		{"repeated key", "log:\n  level: debug\n  level: warn\n", []string{"level"}},
		{"not YAML", "addr: [\n", []string{"wharf.yaml"}},
		// Strictness must not end at the first document: a second one
		// would otherwise be ignored without a word.
		{"second document", "addr: :5001\n---\nbogus: 1\n", []string{"wharf.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, []string{"--config", writeFile(t, tc.body)}, nil)
			if err == nil {
				t.Fatal("Load succeeded; want an error")
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoad_ReportsEveryBadValueAtOnce(t *testing.T) {
	_, err := load(t, []string{"--shutdown-timeout", "later"}, map[string]string{
		"WHARF_SPARSE_MANIFESTS":        "maybe",
		"WHARF_UPLOAD_PURGE_AFTER":      "weekly",
		"WHARF_MAX_CONCURRENT_REQUESTS": "lots",
	})
	if err == nil {
		t.Fatal("Load succeeded; want an error")
	}
	for _, w := range []string{
		"WHARF_SPARSE_MANIFESTS", `"maybe"`, "boolean",
		"WHARF_UPLOAD_PURGE_AFTER", `"weekly"`, "duration",
		"WHARF_MAX_CONCURRENT_REQUESTS", `"lots"`, "integer",
		"--shutdown-timeout", `"later"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
}
