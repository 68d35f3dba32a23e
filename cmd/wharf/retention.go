package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/server"
)

func newRetentionCmd() *cobra.Command {
	cmd := accountsGroup("retention", "Preview and run the retention= policies (preview, run, runs)")
	cmd.Long = "The retention= policy deletes the tags no keep rule keeps, and with untagged=AGE the\n" +
		"untagged manifests older than AGE that nothing kept holds. `wharf serve` applies it every\n" +
		"retention.interval; these commands work on the data directory, beside a running server or not.\n" +
		"PATTERN is a repository (team/app), a namespace glob (team/*) or * (every repository)."
	var all, asJSON bool
	preview := &cobra.Command{
		Use:   "preview PATTERN",
		Short: "List what retention would delete now, and why (deletes nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd, func(reg *server.Registry) error {
				plans, err := reg.PreviewRetention(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeIndented(cmd.OutOrStdout(), plans)
				}
				return printPlans(cmd.OutOrStdout(), plans, all)
			})
		},
	}
	preview.Flags().BoolVarP(&all, "all", "a", false, "also list what stays, and why")
	preview.Flags().BoolVar(&asJSON, "json", false, "print every decision as JSON")
	run := &cobra.Command{
		Use:   "run PATTERN",
		Short: "Delete what retention names now, and record the run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd, func(reg *server.Registry) error {
				r, err := reg.RunRetentionOffline(cmd.Context(), args[0])
				if r != nil {
					if perr := printPlans(cmd.OutOrStdout(), r.Plans, false); perr != nil {
						return perr
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Run %d: deleted %d tags and %d manifests in %d repositories, %d failures\n",
						r.ID, r.DeletedTags, r.DeletedManifests, r.Repositories, r.Failures)
				}
				return err
			})
		},
	}
	var limit int
	runs := &cobra.Command{
		Use:   "runs",
		Short: "List the recorded retention runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRegistry(cmd, func(reg *server.Registry) error {
				rs, err := reg.RetentionRuns(cmd.Context(), 0, limit)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "RUN\tSTARTED\tTOOK\tTRIGGER\tBY\tSCOPE\tREPOSITORIES\tTAGS\tMANIFESTS\tFAILURES")
				for _, r := range rs {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", r.ID, when(r.StartedAt),
						r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond), r.Trigger, r.Actor, r.Scope,
						r.Repositories, r.DeletedTags, r.DeletedManifests, r.Failures)
				}
				return w.Flush()
			})
		},
	}
	runs.Flags().IntVarP(&limit, "limit", "n", 20, "list at most this many runs")
	cmd.AddCommand(preview, run, runs)
	return cmd
}

// printPlans writes one line per deletion (with all, per decision).
func printPlans(out io.Writer, plans []server.RetentionPlan, all bool) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REPOSITORY\tTAG\tDIGEST\tACTION\tREASON")
	n := 0
	for _, p := range plans {
		for _, items := range [][]server.RetentionItem{p.Tags, p.Manifests} {
			for _, it := range items {
				if !it.Delete && !all {
					continue
				}
				action := "keep"
				if it.Delete {
					action, n = "delete", n+1
				}
				reason := it.Reason
				if it.Error != "" {
					action, reason = "failed", it.Error
				}
				tag := it.Tag
				if tag == "" {
					tag = "(untagged)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Repository, tag, shortDigest(it.Digest.String()), action, reason)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if n == 0 {
		_, err := fmt.Fprintln(out, "(nothing to delete)")
		return err
	}
	return nil
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func writeIndented(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withRegistry runs fn with the registry of the data directory the
// command's flags name.
func withRegistry(cmd *cobra.Command, fn func(reg *server.Registry) error) error {
	cfg, log, err := dataDirConfig(cmd)
	if err != nil {
		return err
	}
	reg, err := server.OpenRegistry(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer reg.Close()
	return fn(reg)
}
