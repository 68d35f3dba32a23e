package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/server"
)

func newReplicationCmd() *cobra.Command {
	cmd := accountsGroup("replication", "Show replication rules and their status (ls, status)")
	cmd.Long = "Replication rules are managed by namespace admins in the web UI or the API\n" +
		"(/v2/namespaces/NS/replication); these commands read them, with the status every replica shares."
	ls := &cobra.Command{
		Use:   "ls [NAMESPACE]",
		Short: "List the replication rules (of one namespace) with their backlog and last error",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns := ""
			if len(args) == 1 {
				ns = args[0]
			}
			return withReplication(cmd, func(r *server.ReplicationRules) error {
				rules, err := r.List(cmd.Context(), ns)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tREPOSITORIES\tDESTINATION\tPENDING\tLAG\tLAST RUN\tLAST ERROR")
				for _, x := range rules {
					fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", x.ID, x.Pattern, destination(x.URL, x.DestPrefix), x.Pending,
						x.Lag.Round(time.Second), when(x.LastRun), x.LastError)
				}
				return w.Flush()
			})
		},
	}
	status := &cobra.Command{
		Use:   "status ID",
		Short: "Show one replication rule in full: destination, last run and success, failures, backlog and lag",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("%q: want a rule ID (wharf replication ls lists them)", args[0])
			}
			return withReplication(cmd, func(r *server.ReplicationRules) error {
				x, err := r.Get(cmd.Context(), id)
				if err != nil {
					return err
				}
				user := x.Username
				if x.HasPassword {
					user += " (password set)"
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				for _, kv := range [][2]string{
					{"rule", strconv.FormatInt(x.ID, 10)},
					{"namespace", x.Namespace},
					{"repositories", x.Pattern},
					{"destination", destination(x.URL, x.DestPrefix)},
					{"username", user},
					{"created", when(x.CreatedAt) + " by " + x.CreatedBy},
					{"last run", when(x.LastRun)},
					{"last success", when(x.LastOK)},
					{"last error", x.LastError},
					{"failures", strconv.FormatInt(x.Failures, 10)},
					{"pending", strconv.FormatInt(x.Pending, 10)},
					{"lag", x.Lag.Round(time.Second).String()},
				} {
					fmt.Fprintf(w, "%s:\t%s\n", kv[0], kv[1])
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(ls, status)
	return cmd
}

// destination is a rule's destination as one string: URL/prefix.
func destination(url, prefix string) string {
	if prefix == "" {
		return url
	}
	return url + "/" + prefix
}

// withReplication runs fn with the replication rules of the database the
// command's flags name.
func withReplication(cmd *cobra.Command, fn func(r *server.ReplicationRules) error) error {
	cfg, log, err := dataDirConfig(cmd)
	if err != nil {
		return err
	}
	r, err := server.OpenReplicationRules(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}
