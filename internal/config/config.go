// Package config holds wharf's one configuration struct and loads it with
// the precedence flags > WHARF_* environment > YAML file > defaults.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is everything `wharf serve` can be told.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string `yaml:"addr"`
	// DataDir holds the embedded stores: blobs and the SQLite database.
	DataDir string `yaml:"data_dir"`
	// DebugAddr, when set, serves Go's pprof profiles on a separate
	// listener (keep it on loopback).
	DebugAddr string `yaml:"debug_addr"`
	// MetricsAddr, when set, serves /metrics and pprof on a separate
	// listener, and /metrics leaves the registry's listener: scrapers and
	// profilers belong on an internal network, not on the public port.
	MetricsAddr string `yaml:"metrics_addr"`
	// ShutdownTimeout bounds how long in-flight requests (uploads) may run
	// after SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TrustedProxies are the reverse proxies (IP addresses or CIDR
	// prefixes) whose X-Forwarded-For and X-Forwarded-Proto are believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// SecretKey (base64 of 32 bytes) seals stored credentials such as
	// replication passwords. Replicas sharing a database must share it;
	// with local metadata and none set, one is generated into DataDir.
	SecretKey string `yaml:"secret_key"`
	// AllowInternalDestinations lets webhooks and replication rules reach
	// this host and its private networks (loopback, link-local, RFC 1918):
	// refused by default, as a namespace admin could otherwise aim them at
	// services that trust the registry's network.
	AllowInternalDestinations bool `yaml:"allow_internal_destinations"`

	Log        Log        `yaml:"log"`
	Storage    Storage    `yaml:"storage"`
	Database   Database   `yaml:"database"`
	Validation Validation `yaml:"validation"`
	Limits     Limits     `yaml:"limits"`
	Uploads    Uploads    `yaml:"uploads"`
	Webhooks   Webhooks   `yaml:"webhooks"`
	GC         GC         `yaml:"gc"`
	Retention  Retention  `yaml:"retention"`
	Auth       Auth       `yaml:"auth"`
	TLS        TLS        `yaml:"tls"`
	Mirror     Mirror     `yaml:"mirror"`

	// Replication runs the replication rules stored in the database.
	Replication Replication `yaml:"replication"`
}

// Mirror configures the pull-through cache of other registries.
type Mirror struct {
	// Upstreams are the registries wharf mirrors.
	Upstreams []Upstream `yaml:"upstreams"`
	// TagTTL is how long a cached tag is served before it is revalidated
	// against its upstream with a HEAD.
	TagTTL time.Duration `yaml:"tag_ttl"`
	// ServeStale serves a cached tag when its upstream cannot be reached.
	ServeStale bool `yaml:"serve_stale"`
	// AnonymousPull lets callers without an account pull mirrored names;
	// otherwise the caller's account governs, as for local repositories.
	AnonymousPull bool `yaml:"anonymous_pull"`
	// IdleTimeout abandons a blob fetch whose upstream sends nothing for
	// this long: its clients get an error and the next pull fetches
	// afresh. A manifest request (HEAD or GET) must be answered whole
	// within it, or the pull fails, or is served a stale tag. 0 waits for
	// as long as the connection lives.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSize caps the storage of the mirrored namespaces ("50GiB"; empty:
	// no cap). Every EvictInterval, what is over it goes, least recently
	// pulled first, and the garbage collection reclaims the bytes.
	MaxSize       string        `yaml:"max_size"`
	EvictInterval time.Duration `yaml:"evict_interval"`
}

// Upstream is one mirrored registry.
type Upstream struct {
	// Host is the registry's name as clients write it (docker.io,
	// ghcr.io): containerd sends it as ?ns= to a mirror.
	Host string `yaml:"host"`
	// URL is where wharf fetches from (https://registry-1.docker.io).
	URL string `yaml:"url"`
	// Prefix serves the upstream under a local namespace: ghcr/foo/bar
	// is foo/bar upstream. Names fetched through ?ns= are cached there too.
	Prefix string `yaml:"prefix"`
	// Namespaces are served without a prefix, for dockerd's
	// registry-mirrors (which knows only docker.io): [library] serves
	// library/busybox, and busybox as library/busybox.
	Namespaces []string `yaml:"namespaces"`
	// Username and Password log in to the upstream (optional).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Auth modes.
const (
	AuthToken = "token" // accounts, docker's token flow and HTTP Basic
	AuthNone  = "none"  // an open registry: anyone may push and pull
)

// Auth configures who may do what.
type Auth struct {
	// Mode is AuthToken (default) or AuthNone.
	Mode string `yaml:"mode"`
	// Service names this registry in tokens (aud) and challenges.
	Service string `yaml:"service"`
	// Realm is the token endpoint's public URL; empty derives it from each
	// request's scheme and Host, which is right unless a proxy rewrites them.
	Realm string `yaml:"realm"`
	// DefaultVisibility is recorded for repositories a push creates:
	// private or public.
	DefaultVisibility string `yaml:"default_visibility"`
	// TokenLifetime is how long bearer tokens live (at least 60s).
	TokenLifetime time.Duration `yaml:"token_lifetime"`
	// SigningAlgorithm of new token keys: EdDSA or ES256.
	SigningAlgorithm string `yaml:"signing_algorithm"`
	// LoginRefreshTokens hands `docker login` a refresh token, which docker
	// saves as its identity token instead of the password. Off by default,
	// as on Docker Hub: podman and skopeo read docker's config.json and
	// refuse to log in beside an identity token.
	LoginRefreshTokens bool `yaml:"login_refresh_tokens"`
	// AdminPassword, from WHARF_ADMIN_PASSWORD only (never a file or a
	// flag, which other users could read), is the first admin's password.
	AdminPassword string `yaml:"-"`
}

// TLS configures HTTPS.
type TLS struct {
	// Cert and Key are PEM files, reloaded when they change.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// SelfSigned lists host names (and IPs) for a certificate signed by a
	// CA that wharf generates into DataDir/tls.
	SelfSigned []string `yaml:"self_signed"`
}

// Enabled reports whether wharf serves HTTPS.
func (t TLS) Enabled() bool { return t.Cert != "" || len(t.SelfSigned) > 0 }

// Uploads configures upload sessions.
type Uploads struct {
	// PurgeAfter discards sessions not written for this long; 0 keeps them
	// forever.
	PurgeAfter time.Duration `yaml:"purge_after"`
}

// Webhooks configures the delivery of webhooks from the outbox.
type Webhooks struct {
	// MaxAttempts is how many failed attempts dead-letter a delivery.
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the delay before the first retry; each further retry
	// waits twice as long as the one before, up to an hour.
	Backoff time.Duration `yaml:"backoff"`
	// Timeout bounds one attempt, response included.
	Timeout time.Duration `yaml:"timeout"`
	// Poll is how often a replica looks for deliveries that are due.
	Poll time.Duration `yaml:"poll"`
	// RegistryURL is the registry's URL as receivers know it, for the
	// links in payloads ("": payloads name repositories without a host).
	RegistryURL string `yaml:"registry_url"`
}

// GC configures the garbage collection that wharf serve runs.
type GC struct {
	// Interval between runs, shared by all replicas; 0 runs none (an
	// admin may still start one).
	Interval time.Duration `yaml:"interval"`
	// UntaggedAge: untagged manifests pushed longer ago than this, which
	// nothing holds, are collected; 0 keeps every untagged manifest.
	UntaggedAge time.Duration `yaml:"untagged_age"`
	// Grace keeps what was pushed or reused more recently, as `wharf gc
	// --grace` does.
	Grace time.Duration `yaml:"grace"`
}

// Retention configures the scheduled run of the retention= policies.
type Retention struct {
	// Interval is how often serve deletes what the policies name (one
	// replica per interval when several share a database); 0 never does.
	Interval time.Duration `yaml:"interval"`
}

// Replication configures how serve runs the replication rules.
type Replication struct {
	// ReconcileInterval is how often every rule is reconciled (one
	// replica per interval), repairing what the event-driven copies
	// missed; 0 never reconciles on a schedule.
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// Backoff is the delay before a failed copy's first retry, doubled
	// for each further one up to an hour.
	Backoff time.Duration `yaml:"backoff"`
	// MaxAttempts failed attempts give a copy up to the reconcile.
	MaxAttempts int `yaml:"max_attempts"`
	// Poll is how often a replica looks for copies that are due.
	Poll time.Duration `yaml:"poll"`
	// Lease is how long a replica's claim on a copy lasts unless renewed
	// (it renews every third of it while it copies): how long the copies
	// of a replica that died wait for another.
	Lease time.Duration `yaml:"lease"`
}

// Log configures the structured logs.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Storage selects the blob store.
type Storage struct {
	// URL names the blob store: a directory, or an S3 bucket as
	// s3://BUCKET[/PREFIX]?endpoint=URL&region=…&path_style=true. Empty
	// means Filesystem.Root. Resolve sets Driver from it.
	URL string `yaml:"url"`
	// Driver is "filesystem" or "s3".
	Driver     string            `yaml:"driver"`
	Filesystem FilesystemStorage `yaml:"filesystem"`
	S3         S3Storage         `yaml:"s3"`
}

// IsS3URL reports whether a storage URL names an S3 bucket.
func IsS3URL(s string) bool { return strings.HasPrefix(s, "s3://") }

// S3Storage holds the S3 credentials, which never go in the URL (URLs end
// up in logs and process listings). When AccessKey is empty the driver
// reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN,
// then the shared credentials file.
type S3Storage struct {
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// AllowInternalDestinations lets webhooks and replication rules reach
	// this host and its private networks (loopback, link-local, RFC 1918):
	// refused by default, as a namespace admin could otherwise aim them at
	// services that trust the registry's network.
	AllowInternalDestinations bool `yaml:"allow_internal_destinations"`
	// Redirect answers blob GETs, after the authorization check, with a
	// 307 to a presigned URL of the blob's object, so that layer bytes go
	// from the store to the client without passing through wharf. Off by
	// default: the URL must be reachable by clients, which an internal
	// endpoint is not.
	Redirect bool `yaml:"redirect"`
	// PublicEndpoint is the store's URL as clients reach it, which
	// presigned URLs are signed for; empty means the storage URL's
	// endpoint.
	PublicEndpoint string `yaml:"public_endpoint"`
	// RedirectExpiry is how long a presigned URL stays valid: anyone who
	// holds one may read the blob until then without asking wharf.
	RedirectExpiry time.Duration `yaml:"redirect_expiry"`
}

// MaxRedirectExpiry bounds storage.s3.redirect_expiry: a URL only has to
// outlive the moment the client follows it, and a leaked one bypasses
// authorization until it expires.
const MaxRedirectExpiry = time.Hour

// FilesystemStorage configures the filesystem blob store.
type FilesystemStorage struct {
	// Root defaults to DataDir.
	Root string `yaml:"root"`
}

// Database selects the metadata store.
type Database struct {
	// URL names the database: a postgres:// or postgresql:// URL
	// (postgres://USER[:PASS]@HOST:PORT/DB?sslmode=…), or the path of a
	// SQLite file. Empty means SQLite.Path. Resolve sets Driver from it.
	URL string `yaml:"url"`
	// Driver is "sqlite" or "postgres".
	Driver string         `yaml:"driver"`
	SQLite SQLiteDatabase `yaml:"sqlite"`
}

// IsPostgresURL reports whether a database URL names PostgreSQL.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// SQLiteDatabase configures the embedded SQLite database.
type SQLiteDatabase struct {
	// Path defaults to DataDir/wharf.db.
	Path string `yaml:"path"`
}

// Validation tunes what the registry accepts.
type Validation struct {
	// SparseManifests accepts manifests whose layers or child manifests
	// were never pushed.
	SparseManifests bool `yaml:"sparse_manifests"`
	// MaxManifestBytes bounds manifest bodies.
	MaxManifestBytes int64 `yaml:"max_manifest_bytes"`
}

// Limits protect the server from overload.
type Limits struct {
	// MaxConcurrentRequests answers TOOMANYREQUESTS beyond this many
	// requests in flight in each of two pools: registry clients (the
	// distribution API and /token) and the web (UI, Hub JSON API,
	// /metrics). 0 means no limit.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// IdleTimeout cuts off a request whose body sends nothing for this
	// long, so that a stalled client does not hold a goroutine and its
	// buffers forever; 0 waits forever.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSize caps the storage of the mirrored namespaces ("50GiB"; empty:
	// no cap). Every EvictInterval, what is over it goes, least recently
	// pulled first, and the garbage collection reclaims the bytes.
	MaxSize       string        `yaml:"max_size"`
	EvictInterval time.Duration `yaml:"evict_interval"`
}

// Default returns the configuration used when nothing else is said.
func Default() Config {
	return Config{
		Addr:            ":5000",
		DataDir:         "./wharf-data",
		ShutdownTimeout: 30 * time.Second,
		Log:             Log{Level: "info", Format: "text"},
		Storage:         Storage{Driver: "filesystem", S3: S3Storage{RedirectExpiry: 10 * time.Minute}},
		Database:        Database{Driver: "sqlite"},
		Validation:      Validation{MaxManifestBytes: 4 << 20},
		Uploads:         Uploads{PurgeAfter: 24 * time.Hour},
		Webhooks:        Webhooks{MaxAttempts: 12, Backoff: 10 * time.Second, Timeout: 10 * time.Second, Poll: time.Second},
		GC:              GC{Interval: time.Hour, UntaggedAge: 24 * time.Hour, Grace: time.Hour},
		Retention:       Retention{Interval: 24 * time.Hour},
		Limits:          Limits{IdleTimeout: 60 * time.Second},
		Auth: Auth{Mode: AuthToken, Service: "wharf", DefaultVisibility: "private",
			TokenLifetime: 5 * time.Minute, SigningAlgorithm: "EdDSA"},
		Mirror: Mirror{TagTTL: 5 * time.Minute, ServeStale: true, IdleTimeout: 30 * time.Second, EvictInterval: 10 * time.Minute},

		Replication: Replication{ReconcileInterval: time.Hour, Backoff: 10 * time.Second, MaxAttempts: 10, Poll: time.Second, Lease: time.Minute},
	}
}

// Resolve fills settings derived from others (store paths under DataDir).
func (c *Config) Resolve() {
	switch {
	case IsS3URL(c.Storage.URL):
		c.Storage.Driver = "s3"
	case c.Storage.URL != "":
		c.Storage.Driver, c.Storage.Filesystem.Root = "filesystem", c.Storage.URL
	}
	if c.Storage.Filesystem.Root == "" {
		c.Storage.Filesystem.Root = filepath.Join(c.DataDir, "blobs")
	}
	if c.Storage.URL == "" && c.Storage.Driver == "filesystem" {
		c.Storage.URL = c.Storage.Filesystem.Root
	}
	switch {
	case IsPostgresURL(c.Database.URL):
		c.Database.Driver = "postgres"
	case c.Database.URL != "":
		c.Database.Driver, c.Database.SQLite.Path = "sqlite", c.Database.URL
	}
	if c.Database.SQLite.Path == "" {
		c.Database.SQLite.Path = filepath.Join(c.DataDir, "wharf.db")
	}
	if c.Database.URL == "" {
		c.Database.URL = c.Database.SQLite.Path
	}
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		bad("addr %q: want host:port, e.g. :5000 or 127.0.0.1:5000", c.Addr)
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			bad("debug_addr %q: want host:port, e.g. 127.0.0.1:6060", c.DebugAddr)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics_addr %q: want host:port, e.g. 127.0.0.1:9090", c.MetricsAddr)
		}
		if c.MetricsAddr == c.Addr || c.MetricsAddr == c.DebugAddr {
			bad("metrics_addr %q: must differ from addr and debug_addr", c.MetricsAddr)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir must not be empty")
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout must not be negative")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format %q: want text or json", c.Log.Format)
	}
	switch c.Storage.Driver {
	case "filesystem":
	case "s3":
		// The driver checks the rest (s3.ParseURL) and the bucket itself.
		u, err := url.Parse(c.Storage.URL)
		switch {
		case err != nil || u.Scheme != "s3" || u.Host == "":
			bad("storage.url: want s3://BUCKET[/PREFIX]?endpoint=URL&region=…&path_style=true")
		case u.User != nil:
			bad("storage.url: credentials do not belong in the URL; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or storage.s3.access_key/secret_key")
		case u.Query().Get("endpoint") == "":
			bad("storage.url: no endpoint (?endpoint=https://…)")
		}
		if (c.Storage.S3.AccessKey == "") != (c.Storage.S3.SecretKey == "") {
			bad("storage.s3: access_key and secret_key go together")
		}
		if p := c.Storage.S3.PublicEndpoint; p != "" {
			if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
				bad("storage.s3.public_endpoint %q: want the store's public http(s) URL without a path, e.g. https://s3.example.com", p)
			}
		}
		if e := c.Storage.S3.RedirectExpiry; e < time.Minute || e > MaxRedirectExpiry {
			bad("storage.s3.redirect_expiry %s: want between 1m and %s", e, MaxRedirectExpiry)
		}
	default:
		bad("storage.driver %q: want filesystem or s3", c.Storage.Driver)
	}
	if c.Storage.S3.Redirect && c.Storage.Driver != "s3" {
		bad("storage.s3.redirect: blob redirects need an s3:// storage URL")
	}
	switch c.Database.Driver {
	case "sqlite":
	case "postgres":
		if u, err := url.Parse(c.Database.URL); err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			bad("database.url: want postgres://USER[:PASS]@HOST:PORT/DATABASE?sslmode=…")
		}
	default:
		bad("database.driver %q: want sqlite or postgres", c.Database.Driver)
	}
	if c.Validation.MaxManifestBytes <= 0 {
		bad("validation.max_manifest_bytes must be positive")
	}
	if c.Uploads.PurgeAfter < 0 {
		bad("uploads.purge_after must not be negative")
	}
	if c.Webhooks.MaxAttempts < 1 {
		bad("webhooks.max_attempts must be at least 1")
	}
	if c.Webhooks.Backoff <= 0 || c.Webhooks.Timeout <= 0 || c.Webhooks.Poll <= 0 {
		bad("webhooks.backoff, webhooks.timeout and webhooks.poll must be positive")
	}
	if c.GC.Interval < 0 || c.GC.UntaggedAge < 0 {
		bad("gc.interval and gc.untagged_age must not be negative")
	}
	if c.GC.Grace <= 0 {
		bad("gc.grace must be positive")
	}
	if c.Replication.ReconcileInterval < 0 || c.Replication.Backoff <= 0 || c.Replication.Poll <= 0 || c.Replication.Lease <= 0 || c.Replication.MaxAttempts < 1 {
		bad("replication: reconcile_interval must not be negative; backoff, poll and lease must be positive; max_attempts at least 1")
	}
	if c.Retention.Interval < 0 || (c.Retention.Interval > 0 && c.Retention.Interval < time.Minute) {
		bad("retention.interval must be 0 (off) or at least 1m")
	}
	if c.Limits.MaxConcurrentRequests < 0 {
		bad("limits.max_concurrent_requests must not be negative")
	}
	if c.Limits.IdleTimeout < 0 {
		bad("limits.idle_timeout must not be negative")
	}
	if c.Auth.Mode != AuthToken && c.Auth.Mode != AuthNone {
		bad("auth.mode %q: want token or none", c.Auth.Mode)
	}
	if strings.TrimSpace(c.Auth.Service) == "" || strings.ContainsAny(c.Auth.Service, "\"\\") {
		bad("auth.service %q: want a name without quotes", c.Auth.Service)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			bad("trusted_proxies %q: want an IP address or a CIDR prefix, e.g. 10.0.0.0/8", p)
		}
	}
	if c.Auth.Realm != "" && !strings.HasPrefix(c.Auth.Realm, "http://") && !strings.HasPrefix(c.Auth.Realm, "https://") {
		bad("auth.realm %q: want an http:// or https:// URL", c.Auth.Realm)
	}
	if c.Auth.DefaultVisibility != "private" && c.Auth.DefaultVisibility != "public" {
		bad("auth.default_visibility %q: want private or public", c.Auth.DefaultVisibility)
	}
	if c.Auth.TokenLifetime < 60*time.Second {
		bad("auth.token_lifetime %s: must be at least 60s", c.Auth.TokenLifetime)
	}
	if c.Auth.SigningAlgorithm != "EdDSA" && c.Auth.SigningAlgorithm != "ES256" {
		bad("auth.signing_algorithm %q: want EdDSA or ES256", c.Auth.SigningAlgorithm)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls.cert and tls.key go together")
	}
	if c.TLS.Cert != "" && len(c.TLS.SelfSigned) > 0 {
		bad("tls.cert and tls.self_signed exclude each other")
	}
	errs = append(errs, c.Mirror.validate()...)
	return errors.Join(errs...)
}

func (m Mirror) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.TagTTL < 0 {
		bad("mirror.tag_ttl %s: must not be negative", m.TagTTL)
	}
	if m.EvictInterval <= 0 {
		bad("mirror.evict_interval %s: must be positive", m.EvictInterval)
	}
	if m.IdleTimeout < 0 {
		bad("mirror.idle_timeout %s: must not be negative", m.IdleTimeout)
	}
	seen := map[string]string{}
	claim := func(what, name string, i int) {
		if prev, ok := seen[what+name]; ok {
			bad("mirror.upstreams[%d]: %s %q is already %s's", i, what, name, prev)
		}
		seen[what+name] = m.Upstreams[i].Host
	}
	for i, u := range m.Upstreams {
		if u.Host == "" || strings.ContainsAny(u.Host, "/ ") {
			bad("mirror.upstreams[%d].host %q: want a registry host such as docker.io", i, u.Host)
		}
		if pu, err := url.Parse(u.URL); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("mirror.upstreams[%d].url %q: want an http:// or https:// URL", i, u.URL)
		}
		if u.Prefix == "" && len(u.Namespaces) == 0 {
			bad("mirror.upstreams[%d] (%s): set a prefix, namespaces, or both", i, u.Host)
		}
		if strings.Contains(u.Prefix, "/") {
			bad("mirror.upstreams[%d].prefix %q: one name component, e.g. ghcr", i, u.Prefix)
		}
		claim("host", u.Host, i)
		for _, n := range append([]string{u.Prefix}, u.Namespaces...) {
			if n != "" {
				claim("namespace", n, i)
			}
		}
	}
	return errs
}

// readFile decodes a YAML file strictly over c.
func readFile(c *Config, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	return decodeYAML(c, f, path)
}
