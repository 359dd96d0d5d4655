package cli

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/policy"
)

func banCmd(e *env) *cobra.Command {
	return group("ban", "Manage address patterns that may not post (per list, or --global)",
		banAddCmd(e), banRmCmd(e), banLsCmd(e))
}

// banScope resolves "LIST" or --global to a list id (0 for global).
func (e *env) banScope(c *cobra.Command, d *app.Database, args []string, global bool) (int64, string, error) {
	if global {
		return 0, "all lists", nil
	}
	if len(args) == 0 {
		return 0, "", usagef("%s: give a LIST or --global", c.CommandPath())
	}
	l, err := lists.Get(c.Context(), d, args[0])
	if err != nil {
		return 0, "", err
	}
	return l.ID, l.Address, nil
}

func banAddCmd(e *env) *cobra.Command {
	var global bool
	c := &cobra.Command{
		Use:     "add [LIST] PATTERN",
		Short:   "Ban an address pattern ('*' any run of characters, '?' one)",
		Example: "  parley ban add dev@lists.example.org '*@spam.example'\n  parley ban add --global 'spammer@example.com'",
		Args:    nArgs(1, 2, "[LIST] PATTERN"),
		RunE: func(c *cobra.Command, args []string) error {
			pattern, ok := policy.ParseBanPattern(args[len(args)-1])
			if !ok {
				return errs.Invalidf("%q is not a usable pattern", args[len(args)-1])
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				id, scope, err := e.banScope(c, d, args[:len(args)-1], global)
				if err != nil {
					return err
				}
				added, err := policy.Ban(c.Context(), d, id, pattern)
				if err != nil {
					return err
				}
				if !added {
					return errs.Invalidf("%s is already banned on %s", pattern, scope)
				}
				fmt.Fprintf(e.io.Stdout, "banned %s on %s\n", pattern, scope)
				return nil
			})
		},
	}
	c.Flags().BoolVar(&global, "global", false, "ban on every list")
	return c
}

func banRmCmd(e *env) *cobra.Command {
	var global bool
	c := &cobra.Command{
		Use:   "rm [LIST] PATTERN",
		Short: "Lift a ban",
		Args:  nArgs(1, 2, "[LIST] PATTERN"),
		RunE: func(c *cobra.Command, args []string) error {
			pattern, _ := policy.ParseBanPattern(args[len(args)-1])
			return e.withDB(c.Context(), func(d *app.Database) error {
				id, scope, err := e.banScope(c, d, args[:len(args)-1], global)
				if err != nil {
					return err
				}
				removed, err := policy.Unban(c.Context(), d, id, pattern)
				if err != nil {
					return err
				}
				if !removed {
					return errs.Invalidf("%s is not banned on %s", pattern, scope)
				}
				fmt.Fprintf(e.io.Stdout, "unbanned %s on %s\n", pattern, scope)
				return nil
			})
		},
	}
	c.Flags().BoolVar(&global, "global", false, "a server-wide ban")
	return c
}

func banLsCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "ls [LIST]",
		Short: "List bans: a list's and the server-wide ones",
		Args:  nArgs(0, 1, "at most one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withDB(c.Context(), func(d *app.Database) error {
				var id int64
				if len(args) == 1 {
					l, err := lists.Get(c.Context(), d, args[0])
					if err != nil {
						return err
					}
					id = l.ID
				}
				bans, err := policy.Bans(c.Context(), d, id)
				if err != nil {
					return err
				}
				rows, err := banRows(c.Context(), d, bans)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "SCOPE\tPATTERN")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\n", r.Scope, r.Pattern)
				}
				return tw.Flush()
			})
		},
	}
	return c
}

type banRow struct{ Scope, Pattern string }

// banRows names each ban's scope, sorted by scope and pattern.
func banRows(ctx context.Context, d *app.Database, bans []policy.BanEntry) ([]banRow, error) {
	names := map[int64]string{0: "(all lists)"}
	rows := make([]banRow, 0, len(bans))
	for _, b := range bans {
		if _, ok := names[b.ListID]; !ok {
			l, err := lists.GetByID(ctx, d, b.ListID)
			if err != nil {
				return nil, err
			}
			names[b.ListID] = l.Address
		}
		rows = append(rows, banRow{names[b.ListID], b.Pattern})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Scope != rows[j].Scope {
			return rows[i].Scope < rows[j].Scope
		}
		return rows[i].Pattern < rows[j].Pattern
	})
	return rows, nil
}
