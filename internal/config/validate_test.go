package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/config"
)

func valid() config.Config {
	c := config.Default()
	c.Resolve()
	return c
}

func TestValidate_AcceptsDefaultsAndUsualAddresses(t *testing.T) {
	for _, addr := range []string{":5000", "127.0.0.1:5000", "[::1]:5000", "localhost:0", "0.0.0.0:443"} {
		c := valid()
		c.Addr = addr
		c.DebugAddr = "127.0.0.1:6060"
		if err := c.Validate(); err != nil {
			t.Errorf("addr %q: %v", addr, err)
		}
	}
}

func TestValidate_RejectsEachProblem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		want   []string
	}{
		{"addr without port", func(c *config.Config) { c.Addr = "localhost" }, []string{"addr", `"localhost"`, "host:port"}},
		{"addr with empty port", func(c *config.Config) { c.Addr = "localhost:" }, []string{"addr", `"localhost:"`}},
		{"debug addr without port", func(c *config.Config) { c.DebugAddr = "6060" }, []string{"debug_addr", `"6060"`}},
		{"metrics addr without port", func(c *config.Config) { c.MetricsAddr = "9090" }, []string{"metrics_addr", `"9090"`}},
		{"metrics addr is the registry's", func(c *config.Config) { c.MetricsAddr = c.Addr }, []string{"metrics_addr", "must differ"}},
		{"empty data dir", func(c *config.Config) { c.DataDir = " " }, []string{"data_dir"}},
		{"negative shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = -time.Second }, []string{"shutdown_timeout", "negative"}},
		{"negative replication reconcile interval", func(c *config.Config) { c.Replication.ReconcileInterval = -time.Second }, []string{"replication", "reconcile_interval"}},
		{"no replication backoff", func(c *config.Config) { c.Replication.Backoff = 0 }, []string{"replication", "backoff"}},
		{"unknown log level", func(c *config.Config) { c.Log.Level = "loud" }, []string{"log.level", `"loud"`, "debug, info, warn or error"}},
		{"unknown log format", func(c *config.Config) { c.Log.Format = "xml" }, []string{"log.format", `"xml"`, "text or json"}},
		{"unknown storage driver", func(c *config.Config) { c.Storage.Driver = "tape" }, []string{"storage.driver", `"tape"`}},
		{"unknown database driver", func(c *config.Config) { c.Database.Driver = "csv" }, []string{"database.driver", `"csv"`}},
		{"zero manifest limit", func(c *config.Config) { c.Validation.MaxManifestBytes = 0 }, []string{"validation.max_manifest_bytes", "positive"}},
		{"negative purge age", func(c *config.Config) { c.Uploads.PurgeAfter = -time.Hour }, []string{"uploads.purge_after", "negative"}},
		{"negative gc interval", func(c *config.Config) { c.GC.Interval = -time.Hour }, []string{"gc.interval", "negative"}},
		{"negative untagged age", func(c *config.Config) { c.GC.UntaggedAge = -time.Hour }, []string{"gc.untagged_age", "negative"}},
		{"zero gc grace", func(c *config.Config) { c.GC.Grace = 0 }, []string{"gc.grace", "positive"}},
		{"negative request limit", func(c *config.Config) { c.Limits.MaxConcurrentRequests = -1 }, []string{"limits.max_concurrent_requests", "negative"}},
		{"negative idle timeout", func(c *config.Config) { c.Limits.IdleTimeout = -time.Second }, []string{"limits.idle_timeout", "negative"}},
		{"mirror upstream without a URL", func(c *config.Config) {
			c.Mirror.Upstreams = []config.Upstream{{Host: "docker.io", Namespaces: []string{"library"}}}
		}, []string{"mirror.upstreams[0].url"}},
		{"mirror upstream serving no names", func(c *config.Config) {
			c.Mirror.Upstreams = []config.Upstream{{Host: "ghcr.io", URL: "https://ghcr.io"}}
		}, []string{"mirror.upstreams[0]", "prefix, namespaces"}},
		{"mirror namespace claimed twice", func(c *config.Config) {
			c.Mirror.Upstreams = []config.Upstream{{Host: "a.io", URL: "https://a.io", Prefix: "x"}, {Host: "b.io", URL: "https://b.io", Namespaces: []string{"x"}}}
		}, []string{"mirror.upstreams[1]", `namespace "x" is already a.io's`}},
		{"mirror prefix with a slash", func(c *config.Config) {
			c.Mirror.Upstreams = []config.Upstream{{Host: "ghcr.io", URL: "https://ghcr.io", Prefix: "a/b"}}
		}, []string{"mirror.upstreams[0].prefix", "one name component"}},
		{"negative mirror idle timeout", func(c *config.Config) { c.Mirror.IdleTimeout = -time.Second }, []string{"mirror.idle_timeout"}},
		{"no mirror eviction interval", func(c *config.Config) { c.Mirror.EvictInterval = 0 }, []string{"mirror.evict_interval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

// TestValidate_ReportsAllProblemsAtOnce: one run of `wharf serve` should
// list everything to fix, one problem a line.
func TestValidate_ReportsAllProblemsAtOnce(t *testing.T) {
	c := valid()
	c.Addr = "nonsense"
	c.Log.Level = "loud"
	c.Log.Format = "xml"
	c.Limits.MaxConcurrentRequests = -5
	c.Uploads.PurgeAfter = -time.Minute
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted it")
	}
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not hold several errors", err)
	}
	if n := len(multi.Unwrap()); n != 5 {
		t.Errorf("got %d problems, want 5: %v", n, err)
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != 5 {
		t.Errorf("got %d lines, want one a problem:\n%v", lines, err)
	}
}
