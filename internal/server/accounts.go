package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// Accounts is offline access to a data directory's users, organisations,
// tokens and keys, for `wharf user|org|token|keys` beside a running or a
// stopped server (SQLite lets both write, one at a time).
type Accounts struct {
	*auth.Service
	Tokens *auth.Tokens
	close  func() error
}

// Close releases the database.
func (a *Accounts) Close() error { return a.close() }

// OpenAccounts opens the accounts of the database cfg names.
func OpenAccounts(ctx context.Context, cfg config.Config, log *slog.Logger) (*Accounts, error) {
	db, err := openOfflineMetadata(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	svc, tokens, err := newAuth(ctx, cfg, db, log, newOptions(nil), nil)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Accounts{Service: svc, Tokens: tokens, close: db.Close}, nil
}

// Policies is offline access to a database's policies, for `wharf
// policy` beside a running or a stopped server: running servers see a
// change at their next push (registry.Policies checks a version). What
// it changes is recorded as set by OfflineActor.
type Policies struct {
	p     *registry.Policies
	close func() error
}

// OfflineActor is who the offline commands record as having changed
// something: they act with the database's rights, not an account's.
const OfflineActor = "cli"

// Close releases the database.
func (p *Policies) Close() error { return p.close() }

// OpenPolicies opens the policies of the database cfg names.
func OpenPolicies(ctx context.Context, cfg config.Config, log *slog.Logger) (*Policies, error) {
	db, err := openOfflineMetadata(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	return &Policies{p: registry.NewPolicies(db, log), close: db.Close}, nil
}

// Set records values (KEY → VALUE) on pattern, all or none.
func (p *Policies) Set(ctx context.Context, pattern string, values map[string]string) error {
	return offlineErr(p.p.Set(registry.WithActor(ctx, OfflineActor), pattern, values))
}

// Remove removes pattern's value for key.
func (p *Policies) Remove(ctx context.Context, pattern, key string) error {
	return offlineErr(p.p.Remove(registry.WithActor(ctx, OfflineActor), pattern, key))
}

// List lists the policies set on pattern, or every policy for "".
func (p *Policies) List(ctx context.Context, pattern string) ([]metadata.Policy, error) {
	ps, err := p.p.List(ctx, pattern)
	return ps, offlineErr(err)
}

// Effective lists the settings in effect for a repository or glob.
func (p *Policies) Effective(ctx context.Context, pattern string) ([]registry.Setting, error) {
	s, err := p.p.Effective(ctx, pattern)
	return s, offlineErr(err)
}

// PolicyKeyHelp describes every known policy key, for the CLI's help.
func PolicyKeyHelp() string {
	var b strings.Builder
	for _, k := range registry.PolicyKeys() {
		fmt.Fprintf(&b, "  %s=%s (default %s)\n      %s\n", k.Name, k.Values, k.Default, k.Doc)
	}
	return b.String()
}

// offlineErr keeps a domain error's message, which says what to fix,
// without the kind's prefix that repeats it.
func offlineErr(err error) error {
	var de *registry.Error
	if errors.As(err, &de) && de.Message != "" {
		return errors.New(de.Message)
	}
	return err
}

// Registry is offline access to a data directory's images, for `wharf gc`
// beside a running or a stopped server.
type Registry struct {
	*registry.Service
	close func() error
}

// Close releases the stores.
func (r *Registry) Close() error { return r.close() }

// OpenRegistry opens the stores cfg names, without serving them.
func OpenRegistry(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Registry, error) {
	if err := existingDataDir(cfg); err != nil {
		return nil, err
	}
	svc, meta, err := openRegistry(ctx, cfg, log, newOptions(opts), nil)
	if err != nil {
		return nil, err
	}
	return &Registry{Service: svc, close: meta.Close}, nil
}

// openOfflineMetadata opens the database cfg names for an offline
// command. On SQLite the database is a file of the data directory, which
// must exist already (existingDataDir).
func openOfflineMetadata(ctx context.Context, cfg config.Config, log *slog.Logger) (*sqldb.DB, error) {
	switch cfg.Database.Driver {
	case "sqlite":
		if err := existingDataDir(cfg); err != nil {
			return nil, err
		}
	case "postgres":
	default:
		return nil, fmt.Errorf("unknown database driver %q", cfg.Database.Driver)
	}
	return openMetadata(ctx, cfg, log)
}

// existingDataDir refuses a data directory that is not there: the offline
// commands administer a server's data and must not create an empty one.
func existingDataDir(cfg config.Config) error {
	if _, err := os.Stat(cfg.DataDir); err != nil {
		return fmt.Errorf("data directory: %w (run `wharf serve` once, or pass --data-dir)", err)
	}
	return nil
}

// What `wharf gc` needs of the registry package, which main does not
// import (it wires through this package).
type (
	GCOptions = registry.GCOptions
	GCReport  = registry.GCReport
)

// DefaultGCGrace is registry.DefaultGCGrace.
const DefaultGCGrace = registry.DefaultGCGrace

// ErrGCBusy is registry.ErrGCBusy: a collection holds the lease.
var ErrGCBusy = registry.ErrGCBusy

// CollectGarbageLeased runs `wharf gc`: under the garbage collection
// lease that serve's runs take, recorded as a run of trigger "cli" by
// the offline actor, so that it never collects beside a replica's run and
// shows on the admin page like one.
func (r *Registry) CollectGarbageLeased(ctx context.Context, opts GCOptions) (GCReport, error) {
	gc := r.GCRuns()
	if gc == nil {
		return GCReport{}, errors.New("garbage collection: this metadata store cannot lease the job")
	}
	_, rep, err := gc.RunWith(registry.WithActor(ctx, OfflineActor), OfflineActor, opts)
	return rep, err
}

// openMetadata opens the metadata database cfg names, SQLite or
// PostgreSQL.
func openMetadata(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...sqldb.Option) (*sqldb.DB, error) {
	location := cfg.Database.SQLite.Path
	if cfg.Database.Driver == "postgres" {
		location = cfg.Database.URL
	}
	db, err := sqldb.Open(ctx, location, log, opts...)
	if err != nil {
		return nil, fmt.Errorf("open metadata: %w", err)
	}
	return db, nil
}
