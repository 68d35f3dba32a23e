package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/importer"
	"github.com/wharf/wharf/internal/server"
)

// addImportDistributionCmd makes `wharf import distribution ROOTDIR` a
// subcommand of docker's `wharf import FILE`, which keeps its meaning: a
// file named "distribution" can still be imported as ./distribution.
func addImportDistributionCmd(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "import" {
			c.AddCommand(newImportDistributionCmd())
			return
		}
	}
	panic("wharf: no import command to add `import distribution` to")
}

func newImportDistributionCmd() *cobra.Command {
	var opts importer.Options
	dist := &cobra.Command{
		Use:   "distribution ROOTDIR",
		Short: "Import a CNCF registry's (registry:2, distribution v2/v3) filesystem storage",
		Long: `Import every repository, blob, manifest and tag of a CNCF registry's
filesystem storage into the data directory: ROOTDIR is the registry's
storage rootdirectory (holding docker/registry/v2; /var/lib/registry in the
registry:2 image). Digests stay the same, so clients pull what they pulled.

Run it once while the old registry still serves, stop that registry, then
run it again: the second pass skips by digest what wharf already holds,
imports what changed and moves tags to their current targets. Tags that
left the source are reported, and deleted only with --prune-tags.
Every blob is verified against its digest; what cannot be imported is
listed at the end and makes the command fail. Safe beside a running
wharf serve on the same data directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := importer.OpenSource(args[0])
			if err != nil {
				return err
			}
			cfg, log, err := dataDirConfig(cmd)
			if err != nil {
				return err
			}
			// Unlike gc, an import is how a data directory may begin.
			if !opts.DryRun {
				if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
					return err
				}
			}
			reg, err := server.OpenRegistry(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer reg.Close()
			opts.Progress = cmd.OutOrStdout()
			start := time.Now()
			rep, err := importer.Import(cmd.Context(), reg.Service, src, opts)
			printImportReport(cmd, opts, rep, time.Since(start))
			return err
		},
	}
	addStoreFlags(dist.Flags())
	dist.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "read and verify the source and report what would be imported, import nothing")
	dist.Flags().BoolVar(&opts.PruneTags, "prune-tags", false, "delete tags of imported repositories that the source no longer has")
	return dist
}

func printImportReport(cmd *cobra.Command, opts importer.Options, rep importer.Report, took time.Duration) {
	out := cmd.OutOrStdout()
	verb := "Imported"
	if opts.DryRun {
		verb = "Would import"
	}
	for _, t := range rep.TagsVanished {
		fmt.Fprintf(out, "Tag %s is no longer in the source\n", t)
	}
	fmt.Fprintf(out, "%s %d repositories in %s: blobs %d imported (%s), %d already present; manifests %d imported, %d already present; tags %d set, %d unchanged",
		verb, rep.Repositories, took.Round(time.Millisecond), rep.BlobsImported, importer.MB(rep.Bytes), rep.BlobsSkipped,
		rep.ManifestsImported, rep.ManifestsSkipped, rep.TagsSet, rep.TagsUnchanged)
	if len(rep.TagsVanished) > 0 {
		fmt.Fprintf(out, ", %d vanished from the source (%d pruned)", len(rep.TagsVanished), rep.TagsPruned)
	}
	fmt.Fprintln(out)
	if n := len(rep.Problems); n > 0 {
		fmt.Fprintf(out, "%d problems; not imported:\n", n)
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
}
