package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/client"
)

// addBuildCommands adds `image build` (and docker's `build` shortcut) and
// `image rebase`.
func addBuildCommands(image, root *cobra.Command) {
	image.AddCommand(newBuildCmd(), newRebaseCmd())
	root.AddCommand(newBuildCmd())
}

func newBuildCmd() *cobra.Command {
	var opts client.BuildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH",
		Short: "Build an image from a Dockerfile without RUN (no daemon)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			opts.SourceDateEpoch = os.Getenv("SOURCE_DATE_EPOCH")
			return client.ImageBuild(cmd.Context(), st, args[0], opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Tags, "tag", "t", nil, "Name and optionally a tag in the 'name:tag' format")
	f.StringVarP(&opts.File, "file", "f", "", "Name of the Dockerfile (default: 'PATH/Dockerfile')")
	f.StringArrayVar(&opts.BuildArgs, "build-arg", nil, "Set build-time variables (KEY=VALUE)")
	f.StringVar(&opts.Platform, "platform", "", "Set target platform for build (os/arch[/variant])")
	f.StringVar(&opts.Target, "target", "", "Set the target build stage to build")
	f.BoolVar(&opts.Push, "push", false, "Push the image after building it")
	insecureFlag(cmd, &opts.Remote)
	return cmd
}

func newRebaseCmd() *cobra.Command {
	var opts client.RebaseOptions
	cmd := &cobra.Command{
		Use:   "rebase [OPTIONS] IMAGE --onto NEWBASE",
		Short: "Move an image onto a new base image, keeping its own layers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			return client.ImageRebase(cmd.Context(), st, args[0], opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Onto, "onto", "", "New base image (required)")
	f.StringVar(&opts.OldBase, "old-base", "", "Base the image was built on (default: from its org.opencontainers.image.base.* annotations)")
	f.StringVarP(&opts.Tag, "tag", "t", "", "Name of the result (default: the image's own name)")
	f.BoolVar(&opts.InRegistry, "registry", false, "Rebase in the registry even when the local store has the image")
	_ = cmd.MarkFlagRequired("onto")
	insecureFlag(cmd, &opts.Remote)
	return cmd
}
