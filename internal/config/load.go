package config

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// setting ties one field to its environment variable and flag.
type setting struct {
	env   string
	flag  string
	usage string
	get   func(c *Config) string
	set   func(c *Config, v string) error
}

// settings lists every field settable from the environment or a flag.
var settings = []setting{
	{"WHARF_ADDR", "addr", "listen address (host:port)",
		func(c *Config) string { return c.Addr }, func(c *Config, v string) error { c.Addr = v; return nil }},
	{"WHARF_DATA_DIR", "data-dir", "directory for blobs and the database",
		func(c *Config) string { return c.DataDir }, func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"WHARF_DATABASE_URL", "database-url", "metadata database: postgres://USER[:PASS]@HOST:PORT/DB?sslmode=… or a SQLite file (default DATA_DIR/wharf.db)",
		func(c *Config) string { return c.Database.URL }, func(c *Config, v string) error { c.Database.URL = v; return nil }},
	{"WHARF_STORAGE_URL", "storage-url", "blob store: a directory (default DATA_DIR/blobs) or s3://BUCKET[/PREFIX]?endpoint=URL&region=…&path_style=true (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
		func(c *Config) string { return c.Storage.URL }, func(c *Config, v string) error { c.Storage.URL = v; return nil }},
	{"WHARF_S3_REDIRECT", "s3-redirect", "answer blob GETs with a redirect to a presigned URL of the S3 object (clients must reach the public endpoint)",
		func(c *Config) string { return strconv.FormatBool(c.Storage.S3.Redirect) }, boolSetter(func(c *Config) *bool { return &c.Storage.S3.Redirect })},
	{"WHARF_S3_PUBLIC_ENDPOINT", "s3-public-endpoint", "the S3 endpoint as clients reach it, which redirect URLs are signed for (empty: the storage URL's endpoint)",
		func(c *Config) string { return c.Storage.S3.PublicEndpoint }, func(c *Config, v string) error { c.Storage.S3.PublicEndpoint = v; return nil }},
	{"WHARF_S3_REDIRECT_EXPIRY", "s3-redirect-expiry", "how long a redirect URL stays valid (1m to 1h)",
		func(c *Config) string { return c.Storage.S3.RedirectExpiry.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Storage.S3.RedirectExpiry })},
	{"WHARF_DEBUG_ADDR", "debug-addr", "serve pprof profiles on this address (host:port; empty: off)",
		func(c *Config) string { return c.DebugAddr }, func(c *Config, v string) error { c.DebugAddr = v; return nil }},
	{"WHARF_METRICS_ADDR", "metrics-addr", "serve /metrics and pprof on this address instead of the registry's (host:port; empty: /metrics on the registry's address)",
		func(c *Config) string { return c.MetricsAddr }, func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
	{"WHARF_SHUTDOWN_TIMEOUT", "shutdown-timeout", "how long in-flight requests may finish after SIGTERM",
		func(c *Config) string { return c.ShutdownTimeout.String() }, durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"WHARF_LOG_LEVEL", "log-level", "debug, info, warn or error",
		func(c *Config) string { return c.Log.Level }, func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"WHARF_LOG_FORMAT", "log-format", "text or json",
		func(c *Config) string { return c.Log.Format }, func(c *Config, v string) error { c.Log.Format = v; return nil }},
	{"WHARF_SPARSE_MANIFESTS", "sparse-manifests", "accept manifests whose layers or child manifests were not pushed",
		func(c *Config) string { return strconv.FormatBool(c.Validation.SparseManifests) }, boolSetter(func(c *Config) *bool { return &c.Validation.SparseManifests })},
	{"WHARF_UPLOAD_PURGE_AFTER", "upload-purge-after", "discard upload sessions not written for this long (0: never)",
		func(c *Config) string { return c.Uploads.PurgeAfter.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Uploads.PurgeAfter })},
	{"WHARF_WEBHOOK_MAX_ATTEMPTS", "webhook-max-attempts", "dead-letter a webhook delivery after this many failed attempts",
		func(c *Config) string { return strconv.Itoa(c.Webhooks.MaxAttempts) }, intSetter(func(c *Config) *int { return &c.Webhooks.MaxAttempts })},
	{"WHARF_WEBHOOK_BACKOFF", "webhook-backoff", "delay before a failed webhook delivery's first retry, doubled for each further one (up to 1h)",
		func(c *Config) string { return c.Webhooks.Backoff.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Webhooks.Backoff })},
	{"WHARF_WEBHOOK_TIMEOUT", "webhook-timeout", "how long a webhook receiver may take to answer one delivery",
		func(c *Config) string { return c.Webhooks.Timeout.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Webhooks.Timeout })},
	{"WHARF_WEBHOOK_POLL", "webhook-poll", "how often to look for webhook deliveries that are due",
		func(c *Config) string { return c.Webhooks.Poll.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Webhooks.Poll })},
	{"WHARF_WEBHOOK_REGISTRY_URL", "webhook-registry-url", "the registry's URL as webhook receivers reach it, for links in payloads",
		func(c *Config) string { return c.Webhooks.RegistryURL }, func(c *Config, v string) error { c.Webhooks.RegistryURL = v; return nil }},
	{"WHARF_GC_INTERVAL", "gc-interval", "run garbage collection this often, on one replica at a time (0: never)",
		func(c *Config) string { return c.GC.Interval.String() }, durationSetter(func(c *Config) *time.Duration { return &c.GC.Interval })},
	{"WHARF_GC_UNTAGGED_AGE", "gc-untagged-age", "garbage collection deletes untagged manifests pushed longer ago than this (0: keeps them)",
		func(c *Config) string { return c.GC.UntaggedAge.String() }, durationSetter(func(c *Config) *time.Duration { return &c.GC.UntaggedAge })},
	{"WHARF_GC_GRACE", "gc-grace", "garbage collection keeps what was pushed or reused more recently than this",
		func(c *Config) string { return c.GC.Grace.String() }, durationSetter(func(c *Config) *time.Duration { return &c.GC.Grace })},
	{"WHARF_RETENTION_INTERVAL", "retention-interval", "how often to delete what the retention= policies name (0: never)",
		func(c *Config) string { return c.Retention.Interval.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Retention.Interval })},
	{"WHARF_REPLICATION_RECONCILE_INTERVAL", "replication-reconcile-interval", "how often to reconcile every replication rule, on one replica at a time (0: never)",
		func(c *Config) string { return c.Replication.ReconcileInterval.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Replication.ReconcileInterval })},
	{"WHARF_REPLICATION_BACKOFF", "replication-backoff", "delay before a failed replication copy's first retry, doubled for each further one (up to 1h)",
		func(c *Config) string { return c.Replication.Backoff.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Replication.Backoff })},
	{"WHARF_MAX_CONCURRENT_REQUESTS", "max-concurrent-requests", "answer TOOMANYREQUESTS beyond this many requests in flight, for registry clients and for the web UI and Hub API each (0: no limit)",
		func(c *Config) string { return strconv.Itoa(c.Limits.MaxConcurrentRequests) }, intSetter(func(c *Config) *int { return &c.Limits.MaxConcurrentRequests })},
	{"WHARF_IDLE_TIMEOUT", "idle-timeout", "cut off a request whose body sends nothing for this long (0: never)",
		func(c *Config) string { return c.Limits.IdleTimeout.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Limits.IdleTimeout })},
	{"WHARF_AUTH", "auth", "token (accounts and docker login) or none (anyone may push and pull)",
		func(c *Config) string { return c.Auth.Mode }, func(c *Config, v string) error { c.Auth.Mode = v; return nil }},
	{"WHARF_AUTH_SERVICE", "auth-service", "service name in tokens and challenges",
		func(c *Config) string { return c.Auth.Service }, func(c *Config, v string) error { c.Auth.Service = v; return nil }},
	{"WHARF_AUTH_REALM", "auth-realm", "public URL of the token endpoint (empty: from each request)",
		func(c *Config) string { return c.Auth.Realm }, func(c *Config, v string) error { c.Auth.Realm = v; return nil }},
	{"WHARF_DEFAULT_VISIBILITY", "default-visibility", "visibility of repositories a push creates: private or public",
		func(c *Config) string { return c.Auth.DefaultVisibility }, func(c *Config, v string) error { c.Auth.DefaultVisibility = v; return nil }},
	{"WHARF_TOKEN_LIFETIME", "token-lifetime", "how long bearer tokens live (at least 60s)",
		func(c *Config) string { return c.Auth.TokenLifetime.String() }, durationSetter(func(c *Config) *time.Duration { return &c.Auth.TokenLifetime })},
	{"WHARF_LOGIN_REFRESH_TOKENS", "login-refresh-tokens", "hand docker login a refresh token to save instead of the password (podman and skopeo then refuse that config.json)",
		func(c *Config) string { return strconv.FormatBool(c.Auth.LoginRefreshTokens) }, boolSetter(func(c *Config) *bool { return &c.Auth.LoginRefreshTokens })},
	// Environment only: a flag would show the key in ps.
	{"WHARF_SECRET_KEY", "", "",
		func(c *Config) string { return "" }, func(c *Config, v string) error { c.SecretKey = v; return nil }},
	{"WHARF_ADMIN_PASSWORD", "", "",
		func(c *Config) string { return "" }, func(c *Config, v string) error { c.Auth.AdminPassword = v; return nil }},
	{"WHARF_TLS_CERT", "tls-cert", "PEM certificate file for HTTPS, reloaded on change",
		func(c *Config) string { return c.TLS.Cert }, func(c *Config, v string) error { c.TLS.Cert = v; return nil }},
	{"WHARF_TLS_KEY", "tls-key", "PEM private key file for HTTPS, reloaded on change",
		func(c *Config) string { return c.TLS.Key }, func(c *Config, v string) error { c.TLS.Key = v; return nil }},
	{"WHARF_TLS_SELF_SIGNED", "tls-self-signed", "serve HTTPS with a generated CA and certificate for these hosts (comma-separated)",
		func(c *Config) string { return strings.Join(c.TLS.SelfSigned, ",") }, listSetter(func(c *Config) *[]string { return &c.TLS.SelfSigned })},
	{"WHARF_ALLOW_INTERNAL_DESTINATIONS", "allow-internal-destinations", "let webhooks and replication rules reach loopback, link-local and private addresses",
		func(c *Config) string { return strconv.FormatBool(c.AllowInternalDestinations) }, boolSetter(func(c *Config) *bool { return &c.AllowInternalDestinations })},
	{"WHARF_TRUSTED_PROXIES", "trusted-proxies", "reverse proxies whose X-Forwarded-For/-Proto to believe (comma-separated IPs or CIDRs)",
		func(c *Config) string { return strings.Join(c.TrustedProxies, ",") }, listSetter(func(c *Config) *[]string { return &c.TrustedProxies })},
}

// listSetter sets a comma-separated list, dropping empty items.
func listSetter(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var list []string
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		*field(c) = list
		return nil
	}
}

// FlagConfig is the flag naming the YAML file; WHARF_CONFIG works too.
const FlagConfig = "config"

// BindFlags registers every setting's flag on fs, with its default.
func BindFlags(fs *pflag.FlagSet) {
	def := Default()
	fs.String(FlagConfig, "", "YAML configuration file (also WHARF_CONFIG)")
	for _, s := range settings {
		if s.flag == "" {
			continue // environment only
		}
		if s.env == "WHARF_SPARSE_MANIFESTS" || s.env == "WHARF_LOGIN_REFRESH_TOKENS" || s.env == "WHARF_S3_REDIRECT" {
			fs.Bool(s.flag, false, s.usage+" (also "+s.env+")")
			continue
		}
		fs.String(s.flag, s.get(&def), s.usage+" (also "+s.env+")")
	}
}

// Load builds the configuration: defaults, then the YAML file, then the
// environment (looked up with getenv), then the flags the user set.
func Load(fs *pflag.FlagSet, getenv func(string) (string, bool)) (Config, error) {
	c := Default()
	path, _ := getenv("WHARF_CONFIG")
	if f := fs.Lookup(FlagConfig); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		if err := readFile(&c, path); err != nil {
			return c, err
		}
	}
	var errs []error
	for _, s := range settings {
		if v, ok := getenv(s.env); ok {
			if err := s.set(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
			}
		}
	}
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			if err := s.set(&c, f.Value.String()); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", s.flag, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	c.Resolve()
	return c, c.Validate()
}

func decodeYAML(c *Config, r io.Reader, name string) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return fmt.Errorf("config file %s: %w", name, err)
	}
	// A second document would otherwise be ignored, unknown keys and all.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: more than one YAML document", name)
	}
	return nil
}

// parsed returns a setter that parses a value with parse into field,
// naming what was expected when it cannot.
func parsed[T any](what string, parse func(string) (T, error), field func(*Config) *T) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := parse(v)
		if err != nil {
			return fmt.Errorf("invalid %s %q", what, v)
		}
		*field(c) = x
		return nil
	}
}

func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return parsed("duration", time.ParseDuration, field)
}

func boolSetter(field func(*Config) *bool) func(*Config, string) error {
	return parsed("boolean", strconv.ParseBool, field)
}

func intSetter(field func(*Config) *int) func(*Config, string) error {
	return parsed("integer", strconv.Atoi, field)
}
