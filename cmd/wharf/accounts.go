package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/server"
)

// addAccountCommands adds `wharf user`, `org`, `token`, `visibility`,
// `keys` and `gc`: administration of a data directory, offline.
func addAccountCommands(root *cobra.Command) {
	root.AddCommand(newUserCmd(), newOrgCmd(), newTokenCmd(), newVisibilityCmd(), newKeysCmd(), newGCCmd(), newPolicyCmd(), newRetentionCmd(), newReplicationCmd())
}

// accountsGroup is a command group whose subcommands open the data
// directory named by --data-dir / --config / WHARF_*, as serve would.
func accountsGroup(use, short string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	addStoreFlags(cmd.PersistentFlags())
	return cmd
}

// addStoreFlags declares the flags that name a server's stores, for the
// offline commands that open them as serve would (dataDirConfig reads them).
func addStoreFlags(fs *pflag.FlagSet) {
	def := config.Default()
	fs.String("data-dir", def.DataDir, "the server's data directory (also WHARF_DATA_DIR)")
	fs.String(config.FlagConfig, "", "the server's YAML configuration file (also WHARF_CONFIG)")
	fs.String("database-url", "", "the server's metadata database, if not DATA_DIR/wharf.db: postgres://… or a SQLite file (also WHARF_DATABASE_URL)")
	fs.String("storage-url", "", "the server's blob store, if not DATA_DIR/blobs: s3://… or a directory (also WHARF_STORAGE_URL)")
}

// withAccounts runs fn with the accounts of the data directory the
// command's flags name.
func withAccounts(cmd *cobra.Command, fn func(a *server.Accounts) error) error {
	cfg, log, err := dataDirConfig(cmd)
	if err != nil {
		return err
	}
	a, err := server.OpenAccounts(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a)
}

// dataDirConfig is the configuration the command's flags and the
// environment give, as serve would load it, and a logger for warnings.
func dataDirConfig(cmd *cobra.Command) (config.Config, *slog.Logger, error) {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.AddFlagSet(cmd.InheritedFlags())
	fs.AddFlagSet(cmd.Flags())
	cfg, err := config.Load(fs, os.LookupEnv)
	if err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, newLogger(cmd.ErrOrStderr(), config.Log{Level: "warn", Format: "text"}), nil
}

func newUserCmd() *cobra.Command {
	cmd := accountsGroup("user", "Manage user accounts (add, passwd, rm, ls)")
	var admin, stdin bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user, who owns the namespace NAME/",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readNewPassword(cmd, stdin)
			if err != nil {
				return err
			}
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.AddUser(cmd.Context(), args[0], pw, admin); err != nil {
					return accountErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s created\n", args[0])
				return nil
			})
		},
	}
	add.Flags().BoolVar(&admin, "admin", false, "make the user an administrator")
	add.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin")

	var stdin2 bool
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a user's password and end their docker logins",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readNewPassword(cmd, stdin2)
			if err != nil {
				return err
			}
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.SetPassword(cmd.Context(), args[0], pw); err != nil {
					return accountErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", args[0])
				return nil
			})
		},
	}
	passwd.Flags().BoolVar(&stdin2, "password-stdin", false, "read the password from stdin")

	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a user with their tokens and memberships",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.RemoveUser(cmd.Context(), args[0]); err != nil {
					return accountErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s removed\n", args[0])
				return nil
			})
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				users, err := a.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tADMIN\tCREATED")
				for _, u := range users {
					fmt.Fprintf(tw, "%s\t%t\t%s\n", u.Name, u.Admin, u.CreatedAt.UTC().Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(add, passwd, rm, ls)
	return cmd
}

func newOrgCmd() *cobra.Command {
	cmd := accountsGroup("org", "Manage organisations and their members")
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create an organisation, which owns the namespace NAME/",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.AddOrg(cmd.Context(), args[0]); err != nil {
					return accountErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "organisation %s created\n", args[0])
				return nil
			})
		},
	}
	member := &cobra.Command{Use: "member", Short: "Manage an organisation's members", Args: cobra.NoArgs}
	var role string
	madd := &cobra.Command{
		Use:   "add ORG USER",
		Short: "Add a member, or change their role",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.AddMember(cmd.Context(), args[0], args[1], auth.Role(role)); err != nil {
					return accountErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is a member of %s with role %s\n", args[1], args[0], role)
				return nil
			})
		},
	}
	madd.Flags().StringVar(&role, "role", string(auth.RoleRead), "read (pull), write (pull, push) or admin (pull, push, delete)")
	mrm := &cobra.Command{
		Use:   "rm ORG USER",
		Short: "Remove a member",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.RemoveMember(cmd.Context(), args[0], args[1]); err != nil {
					return accountErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s removed from %s\n", args[1], args[0])
				return nil
			})
		},
	}
	mls := &cobra.Command{
		Use:   "ls ORG",
		Short: "List members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				ms, err := a.ListMembers(cmd.Context(), args[0])
				if err != nil {
					return accountErr(err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "USER\tROLE")
				for _, m := range ms {
					fmt.Fprintf(tw, "%s\t%s\n", m.User, m.Role)
				}
				return tw.Flush()
			})
		},
	}
	member.AddCommand(madd, mrm, mls)
	cmd.AddCommand(add, member)
	return cmd
}

func newTokenCmd() *cobra.Command {
	cmd := accountsGroup("token", "Manage personal access tokens, usable as passwords")
	var scope string
	var expires time.Duration
	create := &cobra.Command{
		Use:   "create USER NAME",
		Short: "Create an access token; its secret is printed once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var exp time.Time
			if expires > 0 {
				exp = time.Now().Add(expires)
			}
			return withAccounts(cmd, func(a *server.Accounts) error {
				secret, tok, err := a.CreatePAT(cmd.Context(), args[0], args[1], auth.TokenScope(scope), exp)
				if err != nil {
					return accountErr(err)
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "token "+tok.ID+" created; copy the secret now, it is not shown again:")
				fmt.Fprintln(cmd.OutOrStdout(), secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&scope, "scope", string(auth.ScopeReadWrite), "read, read-write or read-write-delete")
	create.Flags().DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (0: never expires)")
	ls := &cobra.Command{
		Use:   "ls USER",
		Short: "List a user's access tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				toks, err := a.ListPATs(cmd.Context(), args[0])
				if err != nil {
					return accountErr(err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCREATED\tEXPIRES\tLAST USED\tSTATUS")
				now := time.Now()
				for _, t := range toks {
					status := "active"
					switch {
					case !t.RevokedAt.IsZero():
						status = "revoked"
					case !t.Usable(now):
						status = "expired"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope,
						when(t.CreatedAt), when(t.ExpiresAt), when(t.LastUsed), status)
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke USER ID",
		Aliases: []string{"rm"},
		Short:   "Revoke an access token at once",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.RevokePAT(cmd.Context(), args[0], args[1]); err != nil {
					return accountErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[1])
				return nil
			})
		},
	}
	cmd.AddCommand(create, ls, revoke)
	return cmd
}

func newVisibilityCmd() *cobra.Command {
	cmd := accountsGroup("visibility REPOSITORY [public|private]", "Show or set who may pull a repository")
	cmd.Args = cobra.RangeArgs(1, 2)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return withAccounts(cmd, func(a *server.Accounts) error {
			if len(args) == 2 {
				if err := a.SetVisibility(cmd.Context(), args[0], auth.Visibility(args[1])); err != nil {
					return accountErr(err)
				}
			}
			v, err := a.Visibility(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is %s\n", args[0], v)
			return nil
		})
	}
	return cmd
}

func newKeysCmd() *cobra.Command {
	cmd := accountsGroup("keys", "Manage the keys that sign bearer tokens")
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Sign new tokens with a new key; the old one verifies until its tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAccounts(cmd, func(a *server.Accounts) error {
				if err := a.Tokens.Rotate(cmd.Context()); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "signing key rotated; running servers pick it up within a minute")
				return nil
			})
		},
	}
	cmd.AddCommand(rotate)
	return cmd
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// accountErr turns auth's sentinels into messages a person can act on.
func accountErr(err error) error {
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return fmt.Errorf("%w: no such user, organisation or token", err)
	case errors.Is(err, auth.ErrExists):
		return fmt.Errorf("%w: a user or organisation already has that name", err)
	}
	return err
}

// readNewPassword reads a password from stdin (--password-stdin) or asks
// twice on the terminal without echo.
func readNewPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password on stdin")
		}
		return pw, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no terminal to ask for the password on; pass --password-stdin")
	}
	out := cmd.ErrOrStderr()
	fmt.Fprint(out, "Password: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(out)
	if err != nil {
		return "", err
	}
	fmt.Fprint(out, "Repeat password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(out)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("passwords do not match")
	}
	return string(a), nil
}
