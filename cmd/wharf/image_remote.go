package main

import (
	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/client"
)

// addRemoteImageCommands registers the commands that talk to registries:
// `image push`/`push`, `image pull`/`pull`, `login`, `logout`, `cp` and
// `repo ls|tags|rm`.
func addRemoteImageCommands(image, root *cobra.Command) {
	image.AddCommand(newPushCmd(), newPullCmd())
	root.AddCommand(newPushCmd(), newPullCmd(), newLoginCmd(), newLogoutCmd(), newCopyCmd(), newRepoCmd())
}

// insecureFlag adds --insecure to a command that reaches registries.
func insecureFlag(cmd *cobra.Command, r *client.Remote) {
	cmd.Flags().BoolVar(&r.Insecure, "insecure", false, "allow plain HTTP and unverified TLS to the registry")
}

func newPushCmd() *cobra.Command {
	var opts client.PushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			opts.Notes = cmd.ErrOrStderr()
			return client.Push(cmd.Context(), st, args[0], opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&opts.AllTags, "all-tags", "a", false, "push all tags of the repository")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().BoolVar(&opts.Semver, "semver", false, "NAME:VERSION also pushes the floating tags (2.1, 2, latest) of which VERSION is the highest stable version in the registry")
	insecureFlag(cmd, &opts.Remote)
	return cmd
}

func newPullCmd() *cobra.Command {
	var opts client.PullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openLocalStore()
			if err != nil {
				return err
			}
			return client.Pull(cmd.Context(), st, args[0], opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&opts.AllTags, "all-tags", "a", false, "download all tags of the repository")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "platform of a multi-platform image (os/arch[/variant])")
	insecureFlag(cmd, &opts.Remote)
	return cmd
}

func newLoginCmd() *cobra.Command {
	var opts client.LoginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (credentials go to docker's config.json)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Server = args[0]
			}
			return client.Login(cmd.Context(), opts, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&opts.Username, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&opts.Password, "password", "p", "", "password or access token")
	cmd.Flags().BoolVar(&opts.PasswordStdin, "password-stdin", false, "take the password from stdin")
	insecureFlag(cmd, &opts.Remote)
	return cmd
}

func newLogoutCmd() *cobra.Command {
	var opts client.LogoutOptions
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Server = args[0]
			}
			return client.Logout(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
}

func newCopyCmd() *cobra.Command {
	var opts client.CopyOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] SOURCE DESTINATION",
		Short: "Copy an image (all platforms) from one registry repository to another",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return client.Copy(cmd.Context(), args[0], args[1], opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&opts.AllTags, "all-tags", "a", false, "copy all tags of the repository")
	insecureFlag(cmd, &opts.Remote)
	return cmd
}

func newRepoCmd() *cobra.Command {
	repo := &cobra.Command{
		Use:   "repo",
		Short: "Look at and change repositories in a registry",
	}

	var lsOpts client.RepoListOptions
	ls := &cobra.Command{
		Use:   "ls [REGISTRY]",
		Short: "List a registry's repositories",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg := ""
			if len(args) == 1 {
				reg = args[0]
			}
			return client.RepoList(cmd.Context(), reg, lsOpts, cmd.OutOrStdout())
		},
	}
	insecureFlag(ls, &lsOpts.Remote)

	var tagsOpts client.RepoTagsOptions
	tags := &cobra.Command{
		Use:   "tags [OPTIONS] REPOSITORY",
		Short: "List a repository's tags",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return client.RepoTags(cmd.Context(), args[0], tagsOpts, cmd.OutOrStdout())
		},
	}
	tags.Flags().StringVar(&tagsOpts.Format, "format", "", "Go template over .Repository, .Tag and .Reference")
	insecureFlag(tags, &tagsOpts.Remote)

	var rmOpts client.RepoRemoveOptions
	rm := &cobra.Command{
		Use:   "rm REPOSITORY:TAG|REPOSITORY@DIGEST",
		Short: "Delete a tag or a manifest in a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return client.RepoRemove(cmd.Context(), args[0], rmOpts, cmd.OutOrStdout())
		},
	}
	insecureFlag(rm, &rmOpts.Remote)

	var histOpts client.RepoHistoryOptions
	history := &cobra.Command{
		Use:   "history [OPTIONS] REPOSITORY:TAG",
		Short: "Show what a tag pointed at over time (moves and deletes, newest first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return client.RepoHistory(cmd.Context(), args[0], histOpts, cmd.OutOrStdout())
		},
	}
	history.Flags().IntVarP(&histOpts.Limit, "limit", "n", 0, "show only the last N changes")
	insecureFlag(history, &histOpts.Remote)

	var rbOpts client.RepoRollbackOptions
	rollback := &cobra.Command{
		Use:   "rollback REPOSITORY:TAG (--to DIGEST | --steps N)",
		Short: "Point a tag back at an earlier image (a deleted tag comes back too)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return client.RepoRollback(cmd.Context(), args[0], rbOpts, cmd.OutOrStdout())
		},
	}
	rollback.Flags().StringVar(&rbOpts.To, "to", "", "the digest to point the tag at")
	rollback.Flags().IntVar(&rbOpts.Steps, "steps", 0, "undo the tag's last N changes")
	rollback.MarkFlagsMutuallyExclusive("to", "steps")
	insecureFlag(rollback, &rbOpts.Remote)

	repo.AddCommand(ls, tags, rm, history, rollback)
	return repo
}
