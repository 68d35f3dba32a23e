package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/migrate"
	"github.com/wharf/wharf/internal/server"
)

func newMigrateCmd() *cobra.Command {
	var opts migrate.Options
	var from, to storeNames
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Copy an installation to another database and blob store (SQLite + directory ⇄ PostgreSQL + S3)",
		Long: `Copy everything a wharf installation holds into another pair of stores:
every blob (streamed, checked against its digest), manifests byte for byte,
tags with their push times and pushers, blob links, referrers, accounts,
organisations, memberships, access tokens, signing keys, visibility,
descriptions and pull counts. Upload sessions in progress are not copied:
their bytes are in the source's upload area, and clients start them again.

The source is named as for serve (--from-data-dir, --from-database-url,
--from-storage-url; else WHARF_DATA_DIR, WHARF_DATABASE_URL,
WHARF_STORAGE_URL, WHARF_CONFIG; else ./wharf-data). The destination is
named by flags only: --to-database-url and --to-storage-url, or
--to-data-dir for the embedded stores in a directory (created if needed).
S3 credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for both.

Stop the servers of the source first (or run migrate again after stopping
them: a second run copies only what changed). An interrupted migration
resumes when run again: blobs already at the destination with their size
and records already equal there are skipped. Into a destination that holds
other values under the same names (a tag pointing elsewhere, another pull
count) nothing is written unless --replace lets the source's values win;
records only the destination has are kept. --verify re-hashes every blob at
the destination (copying a corrupt one again) and checks every record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd.ErrOrStderr(), config.Log{Level: "warn", Format: "text"})
			src, dst, err := migrateConfigs(cmd, from, to)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "from %s\n  to %s\n", describeStores(src), describeStores(dst))
			if err := existingSource(src); err != nil {
				return err
			}
			if err := prepareDestination(dst); err != nil {
				return err
			}
			srcStores, err := server.OpenStores(cmd.Context(), src, log)
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			defer srcStores.Close()
			dstStores, err := server.OpenStores(cmd.Context(), dst, log)
			if err != nil {
				return fmt.Errorf("destination: %w", err)
			}
			defer dstStores.Close()
			opts.Progress = out
			start := time.Now()
			rep, err := migrate.Run(cmd.Context(),
				migrate.Stores{Meta: srcStores.Meta, Blobs: srcStores.Blobs},
				migrate.Stores{Meta: dstStores.Meta, Blobs: dstStores.Blobs}, opts)
			printMigrateReport(cmd, opts, rep, time.Since(start), err)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&from.dataDir, "from-data-dir", "", "the source's data directory (default WHARF_DATA_DIR, else "+config.Default().DataDir+")")
	f.StringVar(&from.databaseURL, "from-database-url", "", "the source's database: postgres://… or a SQLite file (default DATA_DIR/wharf.db)")
	f.StringVar(&from.storageURL, "from-storage-url", "", "the source's blob store: s3://… or a directory (default DATA_DIR/blobs)")
	f.StringVar(&to.dataDir, "to-data-dir", "", "the destination's data directory, for the embedded stores (created if needed)")
	f.StringVar(&to.databaseURL, "to-database-url", "", "the destination's database: postgres://… or a SQLite file (default TO_DATA_DIR/wharf.db)")
	f.StringVar(&to.storageURL, "to-storage-url", "", "the destination's blob store: s3://… or a directory (default TO_DATA_DIR/blobs)")
	f.BoolVar(&opts.Verify, "verify", false, "re-hash every blob at the destination and check every record")
	f.BoolVar(&opts.Replace, "replace", false, "overwrite records the destination holds with other values")
	return cmd
}

// storeNames are the flags that name one end of a migration.
type storeNames struct{ dataDir, databaseURL, storageURL string }

// migrateConfigs resolves both ends: the source as serve would (flags,
// then the environment and configuration file), the destination from
// its flags alone, since the environment describes the installation
// being moved.
func migrateConfigs(cmd *cobra.Command, from, to storeNames) (src, dst config.Config, err error) {
	src, err = storeConfig(from, os.LookupEnv)
	if err != nil {
		return src, dst, fmt.Errorf("source: invalid configuration:\n%w", err)
	}
	if to.dataDir == "" && (to.databaseURL == "" || to.storageURL == "") {
		return src, dst, errors.New("name the destination: --to-database-url and --to-storage-url, or --to-data-dir for the embedded stores")
	}
	dst, err = storeConfig(to, func(string) (string, bool) { return "", false })
	if err != nil {
		return src, dst, fmt.Errorf("destination: invalid configuration:\n%w", err)
	}
	if sameLocation(src.Database.URL, dst.Database.URL) {
		return src, dst, fmt.Errorf("the source and the destination are the same database (%s)", src.Database.URL)
	}
	if sameLocation(src.Storage.URL, dst.Storage.URL) {
		return src, dst, fmt.Errorf("the source and the destination are the same blob store (%s)", src.Storage.URL)
	}
	return src, dst, nil
}

// storeConfig loads a configuration whose store settings are names'.
func storeConfig(names storeNames, getenv func(string) (string, bool)) (config.Config, error) {
	fs := pflag.NewFlagSet("stores", pflag.ContinueOnError)
	config.BindFlags(fs)
	for flag, v := range map[string]string{"data-dir": names.dataDir, "database-url": names.databaseURL, "storage-url": names.storageURL} {
		if v == "" {
			continue
		}
		if err := fs.Set(flag, v); err != nil {
			return config.Config{}, err
		}
	}
	return config.Load(fs, getenv)
}

// sameLocation compares two store URLs, paths by their absolute form.
func sameLocation(a, b string) bool {
	if config.IsPostgresURL(a) || config.IsS3URL(a) {
		return a == b
	}
	x, errX := filepath.Abs(a)
	y, errY := filepath.Abs(b)
	return errX == nil && errY == nil && x == y
}

func describeStores(c config.Config) string {
	db := "sqlite " + c.Database.SQLite.Path
	if c.Database.Driver == "postgres" {
		db = "postgres " + redactPassword(c.Database.URL)
	}
	return db + " + " + c.Storage.Driver + " " + c.Storage.URL
}

// redactPassword hides the password of a database URL for printing.
func redactPassword(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(database URL)"
}

// existingSource refuses embedded source stores that are not there:
// opening them would create them empty.
func existingSource(c config.Config) error {
	if c.Database.Driver == "sqlite" {
		if _, err := os.Stat(c.Database.SQLite.Path); err != nil {
			return fmt.Errorf("source: no database: %w (pass --from-data-dir or --from-database-url)", err)
		}
	}
	if c.Storage.Driver == "filesystem" {
		if _, err := os.Stat(c.Storage.Filesystem.Root); err != nil {
			return fmt.Errorf("source: no blob store: %w (pass --from-data-dir or --from-storage-url)", err)
		}
	}
	return nil
}

// prepareDestination creates the directories the embedded stores of the
// destination live in.
func prepareDestination(c config.Config) error {
	var dirs []string
	if c.Database.Driver == "sqlite" {
		dirs = append(dirs, filepath.Dir(c.Database.SQLite.Path))
	}
	if c.Storage.Driver == "filesystem" {
		dirs = append(dirs, c.Storage.Filesystem.Root)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("destination: %w", err)
		}
	}
	return nil
}

func printMigrateReport(cmd *cobra.Command, opts migrate.Options, rep migrate.Report, took time.Duration, err error) {
	out := cmd.OutOrStdout()
	added, same, replaced := rep.RecordTotals()
	verb := "Migrated"
	switch {
	case errors.Is(err, migrate.ErrIncomplete):
		verb = "Migrated all but what is listed below"
	case err != nil:
		verb = "Stopped"
	}
	fmt.Fprintf(out, "%s in %s: blobs %d copied (%s), %d already present (%s); records %d added, %d already there, %d replaced",
		verb, took.Round(time.Millisecond), rep.BlobsCopied, migrate.Size(rep.BytesCopied), rep.BlobsPresent, migrate.Size(rep.BytesPresent),
		added, same, replaced)
	if opts.Verify && err == nil {
		fmt.Fprintf(out, "; verified %d blobs (%s) and %d records", rep.BlobsVerified, migrate.Size(rep.BytesVerified), rep.RecordsVerified)
		if rep.BlobsRepaired > 0 {
			fmt.Fprintf(out, ", %d blobs copied again", rep.BlobsRepaired)
		}
	}
	fmt.Fprintln(out)
	if len(rep.Records) > 0 {
		fmt.Fprintf(out, "  the source's records: %s\n", rep.Counts())
	}
	if n := len(rep.Problems); n > 0 {
		fmt.Fprintf(out, "%d problems:\n", n)
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
}
