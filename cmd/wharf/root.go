package main

import (
	"github.com/spf13/cobra"
)

// NewRootCmd builds the command tree; tests run it in-process.
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "A container image registry and a daemonless image client",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd())
	addAccountCommands(root)

	image := newImageCmd()
	addLocalImageCommands(image, root)
	addRemoteImageCommands(image, root)
	root.AddCommand(image)
	return root
}
