package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/server"
)

func newGCCmd() *cobra.Command {
	var opts server.GCOptions
	cmd := accountsGroup("gc", "Delete blobs (and with --untagged, manifests) that no repository uses")
	cmd.Long = `Delete what no repository can reach any more, beside a running or a stopped server:
the bytes of blobs no manifest references and no repository has linked
recently, links to blobs no manifest of their repository uses, and with
--untagged, manifests no tag or index reaches (and referrers whose subject
is gone). Anything pushed, linked or reused within --grace is kept, since it
may belong to a push still under way. On S3 the database says which blobs
nothing references (the bucket is never listed), and gc may run on any
replica while the others serve. It takes the lease that serve's scheduled
collections take, so it never runs at the same time as one (it stops with a
message while one is under way), and its run is listed on the admin page
beside theirs.`
	cmd.Flags().DurationVar(&opts.Grace, "grace", server.DefaultGCGrace, "keep what was pushed or reused more recently than this")
	cmd.Flags().BoolVar(&opts.Untagged, "untagged", false, "also delete untagged manifests that no index references")
	cmd.Flags().DurationVar(&opts.UntaggedAge, "untagged-age", 0, "with --untagged, keep untagged manifests pushed more recently than this (at least --grace)")
	cmd.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "report what would be deleted, delete nothing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if opts.Grace <= 0 {
			return fmt.Errorf("--grace must be positive, not %s", opts.Grace)
		}
		return withRegistry(cmd, func(reg *server.Registry) error {
			start := time.Now()
			rep, err := reg.CollectGarbageLeased(cmd.Context(), opts)
			if errors.Is(err, server.ErrGCBusy) {
				return errors.New("another garbage collection is under way (a wharf serve replica's, or another wharf gc): " +
					"try again when it ends; the lease of one that died lapses within a minute")
			}
			printGCReport(cmd, opts, rep, time.Since(start))
			return err
		})
	}
	return cmd
}

func printGCReport(cmd *cobra.Command, opts server.GCOptions, rep server.GCReport, took time.Duration) {
	out := cmd.OutOrStdout()
	verb := "Deleted"
	if opts.DryRun {
		verb = "Would delete"
	}
	for _, m := range rep.Manifests {
		fmt.Fprintf(out, "%s manifest %s@%s\n", verb, m.Repo, m.Digest)
	}
	if opts.Untagged {
		fmt.Fprintf(out, "%s %d untagged manifests\n", verb, len(rep.Manifests))
	}
	fmt.Fprintf(out, "%s %d blob links no manifest uses\n", verb, rep.Links)
	fmt.Fprintf(out, "%s %d of %d blobs, %s (in %s)\n", verb, rep.Blobs, rep.Scanned, fmt.Sprintf("%.1f MB", float64(rep.Bytes)/1e6), took.Round(time.Millisecond))
	if opts.DryRun && opts.Untagged {
		fmt.Fprintln(out, "(a dry run lists one batch of untagged manifests and does not count the blobs only they hold)")
	}
}
