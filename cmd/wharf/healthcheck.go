package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/config"
)

// newHealthcheckCmd is the container image's HEALTHCHECK: the image is FROM
// scratch, so there is no curl or wget to ask /healthz for us.
func newHealthcheckCmd() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if a wharf server answers /healthz with 200",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				// The same settings serve reads (WHARF_* and WHARF_CONFIG),
				// so the check follows a changed address or TLS without
				// the image's HEALTHCHECK line having to know.
				cfg, err := config.Load(cmd.Flags(), os.LookupEnv)
				if err != nil {
					return fmt.Errorf("invalid configuration:\n%w", err)
				}
				url = healthURL(cfg)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return checkHealth(ctx, url)
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "health endpoint to ask (default: /healthz on the address serve would listen on)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}

// healthURL is /healthz on the local end of the address serve listens on.
func healthURL(cfg config.Config) string {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host, port = "", "5000"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
}

func checkHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// A self-signed certificate is still a live server; the check is
	// about liveness on this host, not about trust.
	transport := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // liveness probe of the local server
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s answered %s", url, resp.Status)
	}
	return nil
}
