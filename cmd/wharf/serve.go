package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/replicate"
	"github.com/wharf/wharf/internal/server"
)

// logFlushInterval is how long a log line may wait in serve's buffer.
const logFlushInterval = 100 * time.Millisecond

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry (OCI Distribution API) on embedded storage",
		Long: `Run the registry. Settings come from flags, then WHARF_* environment
variables, then the YAML file given with --config, then defaults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), os.LookupEnv)
			if err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			// The access log writes a line per request: buffer them rather
			// than pay a write(2) each (server.LogBuffer says what that risks).
			logs := server.NewLogBuffer(cmd.ErrOrStderr(), logFlushInterval)
			defer logs.Close()
			log := newLogger(logs, cfg.Log)
			log = slog.New(server.FlushAtWarn(log.Handler(), logs))
			srv, err := server.New(cmd.Context(), cfg, log, server.WithUploadKey(uploadKey(cfg, log)))
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.Run(cmd.Context())
		},
	}
	config.BindFlags(cmd.Flags())
	return cmd
}

// uploadKey is the secret key that lets a POST open an upload session
// without a database write, or nil: on PostgreSQL without a configured key
// every session is recorded, as before there were keys.
func uploadKey(cfg config.Config, log *slog.Logger) []byte {
	// The generated key lives in the data directory, which server.New
	// would make only after the key is needed.
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil // server.New reports it
	}
	key, err := replicate.LoadKey(cfg.SecretKey, cfg.DataDir, cfg.Database.Driver == "postgres")
	if err != nil && !errors.Is(err, replicate.ErrNoKey) {
		log.Warn("no secret key: upload sessions are recorded at their POST", "err", err)
	}
	return key
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	return slog.New(server.NewLogHandler(w, c.Format == "json", level))
}
