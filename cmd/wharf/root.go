package main

import (
	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/version"
)

// NewRootCmd builds the command tree; tests run it in-process.
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "A container image registry and a daemonless image client",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	// --version prints the same line as `wharf version`.
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newServeCmd(), newVersionCmd(), newHealthcheckCmd(), newMigrateCmd())
	addAccountCommands(root)

	image := newImageCmd()
	addLocalImageCommands(image, root)
	addRemoteImageCommands(image, root)
	addBuildCommands(image, root)
	addImportDistributionCmd(root)
	root.AddCommand(image)
	return root
}
