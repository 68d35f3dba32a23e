package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/metadata/sqldb"
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
	if cfg.Database.Driver != "sqlite" {
		return nil, fmt.Errorf("unknown database driver %q", cfg.Database.Driver)
	}
	if _, err := os.Stat(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w (run `wharf serve` once, or pass --data-dir)", err)
	}
	db, err := sqldb.OpenSQLite(ctx, cfg.Database.SQLite.Path, log)
	if err != nil {
		return nil, fmt.Errorf("open metadata: %w", err)
	}
	svc, tokens, err := newAuth(ctx, cfg, db, log)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Accounts{Service: svc, Tokens: tokens, close: db.Close}, nil
}
