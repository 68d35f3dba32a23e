package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/notify"
	"github.com/wharf/wharf/internal/secretkey"
)

// openWebhooks builds the webhook service over ws. With a secret key (the
// configured one, or the one generated in the data directory when the
// metadata is local), the hooks' signing secrets are sealed at rest, and
// any stored plain before the key existed are sealed now; without one
// (replicas sharing a database and no secret_key set) they stay plain,
// and the log says so.
func openWebhooks(ctx context.Context, cfg config.Config, log *slog.Logger, ws metadata.WebhookStore, o options, key []byte, err error) (*notify.Service, error) {
	opts := notify.Options{MaxAttempts: cfg.Webhooks.MaxAttempts, Backoff: cfg.Webhooks.Backoff,
		Timeout: cfg.Webhooks.Timeout, RegistryURL: cfg.Webhooks.RegistryURL, Now: o.now,
		AllowInternal: cfg.AllowInternalDestinations}
	switch {
	case errors.Is(err, secretkey.ErrNoKey):
		log.WarnContext(ctx, "webhook secrets stored unsealed: no secret key", "fix", "set secret_key (WHARF_SECRET_KEY), the same on every replica")
		return notify.New(ws, log, opts), nil
	case err != nil:
		return nil, err
	}
	if opts.Sealer, err = secretkey.NewSealer(key); err != nil {
		return nil, err
	}
	hooks := notify.New(ws, log, opts)
	if _, err := hooks.SealStored(ctx); err != nil {
		return nil, fmt.Errorf("seal stored webhook secrets: %w", err)
	}
	return hooks, nil
}
