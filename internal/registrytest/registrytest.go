// Package registrytest runs an in-process wharf for tests: httptest, a
// temporary data directory and a temporary SQLite database.
package registrytest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/notify"
	"github.com/wharf/wharf/internal/proxy"
	"github.com/wharf/wharf/internal/replicate"
	"github.com/wharf/wharf/internal/server"
)

// Server is a running in-process wharf.
type Server struct {
	*httptest.Server
	// DataDir is the server's data directory.
	DataDir string
	// Config is the configuration the server runs with.
	Config config.Config
	// Auth manages the server's accounts; nil when it runs open.
	Auth *auth.Service
	// Webhooks delivers the outbox; nothing runs it in the background,
	// so a test calls DeliverDue.
	Webhooks *notify.Service
	// Mirror is the pull-through cache (nil without upstreams); nothing
	// runs its eviction in the background, so a test calls Evict.
	Mirror *proxy.Mirror
	// Replication runs the replication rules; nothing runs it in the
	// background, so a test calls ReplicateDue.
	Replication *replicate.Service

	stop func()
}

// Stop shuts the server down before the test ends, as wharf serve does
// when it exits: what it keeps in memory (pull counts) is written to the
// database. The test's cleanup then has nothing left to do.
func (s *Server) Stop() { s.stop() }

// Option adjusts the server before it starts.
type Option func(*setup)

type setup struct {
	cfg  config.Config
	opts []server.Option
}

// Sparse runs the server with validation.sparse_manifests.
func Sparse() Option { return func(s *setup) { s.cfg.Validation.SparseManifests = true } }

// WithDataDir reuses a data directory, e.g. to test a restart.
func WithDataDir(dir string) Option { return func(s *setup) { s.cfg.DataDir = dir } }

// WithAuth runs the server with accounts and token auth, the first admin
// having adminPassword. Without it the server is open (--auth=none).
func WithAuth(adminPassword string) Option {
	return func(s *setup) {
		s.cfg.Auth.Mode = config.AuthToken
		s.cfg.Auth.AdminPassword = adminPassword
	}
}

// WithConfig applies any change to the configuration.
func WithConfig(f func(*config.Config)) Option { return func(s *setup) { f(&s.cfg) } }

// WithClock makes the server read the time from now (server.WithClock).
func WithClock(now func() time.Time) Option {
	return func(s *setup) { s.opts = append(s.opts, server.WithClock(now)) }
}

// WithAfterFunc starts the mirror's idle timers with afterFunc
// (server.WithAfterFunc).
func WithAfterFunc(afterFunc func(d time.Duration, f func()) proxy.Timer) Option {
	return func(s *setup) { s.opts = append(s.opts, server.WithAfterFunc(afterFunc)) }
}

// cheapPasswords is the smallest argon2id cost: tests check who may do
// what, not how hard a hash is to crack.
var cheapPasswords = auth.PasswordParams{Memory: 64, Time: 1, Threads: 1}

// NewServer starts a wharf on a fresh data directory and stops it when the
// test ends. Logs go to t.Log only with -v, to keep failures readable.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	// Cheap password hashing: the tests that log in do it hundreds of
	// times, and argon2id's production cost is what they would measure.
	s := setup{cfg: config.Default(), opts: []server.Option{server.WithPasswordParams(cheapPasswords)}}
	s.cfg.DataDir = t.TempDir()
	s.cfg.Auth.Mode = config.AuthNone
	// Every receiver and destination a test starts is on loopback.
	s.cfg.AllowInternalDestinations = true
	for _, o := range opts {
		o(&s)
	}
	cfg := s.cfg
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("registrytest: invalid config: %v", err)
	}
	// The handler wharf serve uses, so that benchmarks pay for the access
	// log as a server does.
	log := slog.New(server.NewLogHandler(io.Discard, false, slog.LevelInfo))
	if testing.Verbose() {
		log = slog.New(server.NewLogHandler(testWriter{t}, false, slog.LevelWarn))
	}
	srv, err := server.New(context.Background(), cfg, log, s.opts...)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	stop := sync.OnceFunc(func() {
		hs.Close()
		_ = srv.Close()
	})
	t.Cleanup(stop)
	return &Server{Server: hs, DataDir: cfg.DataDir, Config: cfg, Auth: srv.Accounts(), Webhooks: srv.Webhooks(), Mirror: srv.Mirror(),
		Replication: srv.Replication(), stop: stop}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// PushRandom pushes one small random image to repo under each tag, as an
// anonymous client of an open server, and returns its digest.
func (s *Server) PushRandom(t testing.TB, repo string, tags ...string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		ref, err := name.ParseReference(strings.TrimPrefix(s.URL, "http://")+"/"+repo+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("registrytest: push %s: %v", ref, err)
		}
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
