package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/wharf/wharf/internal/client"
)

// addLocalImageCommands adds the commands that work on the local image
// store under `image`, and docker's top-level shortcuts (images, tag, rmi,
// history, save, load, import) to root.
func addLocalImageCommands(image, root *cobra.Command) {
	image.AddCommand(newImageListCmd("ls"), newImageTagCmd("tag"), newImageRemoveCmd("rm"),
		newImageInspectCmd(), newImageHistoryCmd("history"), newImageSaveCmd("save"),
		newImageLoadCmd("load"), newImageImportCmd("import"))
	root.AddCommand(newImageListCmd("images"), newImageTagCmd("tag"), newImageRemoveCmd("rmi"),
		newImageHistoryCmd("history"), newImageSaveCmd("save"), newImageLoadCmd("load"),
		newImageImportCmd("import"))
}

func newImageListCmd(use string) *cobra.Command {
	var opts client.ListOptions
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				opts.Repository = args[0]
			}
			return client.ImageList(cmd.Context(), st, opts, cmd.OutOrStdout())
		},
	}
	if use == "ls" {
		cmd.Aliases = []string{"list"}
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Filters, "filter", "f", nil, "Filter output based on conditions provided (reference=PATTERN, dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE, until=TIMESTAMP)")
	f.BoolVar(&opts.Digests, "digests", false, "Show digests")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&opts.NoTrunc, "no-trunc", false, "Don't truncate output")
	f.StringVar(&opts.Format, "format", "", "Format output using a Go template ('table …' for a table)")
	return cmd
}

func newImageTagCmd(use string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			return client.ImageTag(cmd.Context(), st, args[0], args[1], cmd.OutOrStdout())
		},
	}
}

func newImageRemoveCmd(use string) *cobra.Command {
	var opts client.RemoveOptions
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			return client.ImageRemove(cmd.Context(), st, args, opts, cmd.OutOrStdout())
		},
	}
	if use == "rm" {
		cmd.Aliases = []string{"remove", "rmi"}
	}
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "Force removal of the image")
	return cmd
}

func newImageInspectCmd() *cobra.Command {
	var opts client.InspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			return client.ImageInspect(cmd.Context(), st, args, opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&opts.Format, "format", "f", "", "Format output using a Go template")
	return cmd
}

func newImageHistoryCmd(use string) *cobra.Command {
	var opts client.HistoryOptions
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			return client.ImageHistory(cmd.Context(), st, args[0], opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.NoTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "Only show image IDs")
	f.StringVar(&opts.Format, "format", "", "Format output using a Go template")
	return cmd
}

func newImageSaveCmd(use string) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			if output == "" {
				out := cmd.OutOrStdout()
				if isTerminal(out) {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
				return client.ImageSave(cmd.Context(), st, args, out)
			}
			// Write beside the target and rename, so a failed save leaves no
			// half-written archive behind.
			f, err := os.CreateTemp(filepath.Dir(output), ".wharf-save-*")
			if err != nil {
				return fmt.Errorf("failed to save image: %w", err)
			}
			defer os.Remove(f.Name())
			if err := client.ImageSave(cmd.Context(), st, args, f); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Chmod(f.Name(), 0o644); err != nil {
				return err
			}
			return os.Rename(f.Name(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func newImageLoadCmd(use string) *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return fmt.Errorf("cannot read the archive: %w", err)
				}
				defer f.Close()
				in = f
			} else if isTerminal(in) {
				return errors.New("requested load from stdin, but stdin is empty: use -i FILE or redirect")
			}
			return client.ImageLoad(cmd.Context(), st, in, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	return cmd
}

func newImageImportCmd(use string) *cobra.Command {
	var opts client.ImportOptions
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("cannot read the filesystem tar: %w", err)
				}
				defer f.Close()
				in = f
			}
			target := ""
			if len(args) == 2 {
				target = args[1]
			}
			return client.ImageImport(cmd.Context(), st, in, target, opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&opts.Message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringArrayVarP(&opts.Changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

// isTerminal reports whether v is a character device (a terminal).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
