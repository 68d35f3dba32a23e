package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/server"
)

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
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			srv, err := server.New(cmd.Context(), cfg, log)
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

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(server.WithRequestID(h))
}
