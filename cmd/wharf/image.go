package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/wharf/wharf/internal/client/store"
)

// newImageCmd is the `wharf image` parent; local and remote subcommands are
// added by addLocalImageCommands and addRemoteImageCommands.
func newImageCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "image",
		Short: "Manage images (docker's image commands, without a daemon)",
		Args:  cobra.NoArgs,
	}
}

// openLocalStore opens the local image store at $WHARF_HOME
// (default ~/.local/share/wharf).
func openLocalStore() (*store.Store, error) {
	st, err := store.Open(store.DefaultRoot())
	if err != nil {
		return nil, fmt.Errorf("%w (set WHARF_HOME to use another directory)", err)
	}
	return st, nil
}
