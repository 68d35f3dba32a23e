package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wharf/wharf/internal/server"
)

func newPolicyCmd() *cobra.Command {
	cmd := accountsGroup("policy", "Manage repository and namespace policies (set, ls, rm)")
	cmd.Long = "Policies are KEY=VALUE settings on a PATTERN: a repository (gallery/ui), a namespace glob\n" +
		"(golden/*, which covers every repository under golden/) or * (every repository). For each key\n" +
		"the most specific pattern wins: the repository, then the longest glob, then *.\n\nKeys:\n" + server.PolicyKeyHelp()
	set := &cobra.Command{
		Use:   "set PATTERN KEY=VALUE...",
		Short: "Set policies on a repository or namespace glob",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			values := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("%q: want KEY=VALUE", kv)
				}
				values[k] = v
			}
			return withPolicies(cmd, func(p *server.Policies) error {
				if err := p.Set(cmd.Context(), args[0], values); err != nil {
					return err
				}
				for _, kv := range args[1:] {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], kv)
				}
				return nil
			})
		},
	}
	ls := &cobra.Command{
		Use:   "ls [PATTERN]",
		Short: "List every policy, or the settings in effect for a repository or glob and where they come from",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPolicies(cmd, func(p *server.Policies) error {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				if len(args) == 0 {
					all, err := p.List(cmd.Context(), "")
					if err != nil {
						return err
					}
					fmt.Fprintln(w, "PATTERN\tKEY\tVALUE\tSET BY\tSET AT")
					for _, x := range all {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", x.Pattern, x.Key, x.Value, x.SetBy, when(x.SetAt))
					}
					return w.Flush()
				}
				eff, err := p.Effective(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintln(w, "KEY\tVALUE\tFROM\tSET BY\tSET AT")
				for _, s := range eff {
					from, at := s.Pattern, when(s.SetAt)
					if from == "" {
						from, at = "(default)", ""
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Key, s.Value, from, s.SetBy, at)
				}
				return w.Flush()
			})
		},
	}
	rm := &cobra.Command{
		Use:   "rm PATTERN KEY",
		Short: "Remove a pattern's value for a key (a broader pattern's or the default applies again)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPolicies(cmd, func(p *server.Policies) error {
				if err := p.Remove(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s removed\n", args[0], args[1])
				return nil
			})
		},
	}
	cmd.AddCommand(set, ls, rm)
	return cmd
}

// withPolicies runs fn with the policies of the database the command's
// flags name.
func withPolicies(cmd *cobra.Command, fn func(p *server.Policies) error) error {
	cfg, log, err := dataDirConfig(cmd)
	if err != nil {
		return err
	}
	p, err := server.OpenPolicies(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer p.Close()
	return fn(p)
}
