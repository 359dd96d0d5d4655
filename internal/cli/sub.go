package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notify"
)

func subCmd(e *env) *cobra.Command {
	return group("sub", "List and decide on subscriptions waiting for an owner's approval",
		subLsCmd(e), subDecideCmd(e, true), subDecideCmd(e, false))
}

func subLsCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls [LIST]",
		Short: "List the subscription requests waiting for approval (of every list without LIST)",
		Args:  nArgs(0, 1, "at most one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			return e.withDB(ctx, func(d *app.Database) error {
				names, listID, err := listNames(ctx, d, args)
				if err != nil {
					return err
				}
				rs, err := members.Requests(ctx, d, listID)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.io.Stdout, nonNil(rs))
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tLIST\tADDRESS\tDELIVERY\tASKED")
				for _, r := range rs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.ID, names[r.ListID], r.Address, r.Delivery, r.RequestedAt.UTC().Format(time.DateTime))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func subDecideCmd(e *env, approve bool) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "approve LIST ID|ADDRESS...",
		Short: "Approve subscription requests: the members are added and welcomed",
		Args:  nArgs(2, -1, "LIST and at least one request ID or ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			return e.withDB(ctx, func(d *app.Database) error {
				var done []string
				err := db.InTx(ctx, d.DB, func(tx *sqlx.Tx) error {
					l, err := lists.Get(ctx, tx, args[0])
					if err != nil {
						return err
					}
					done = done[:0]
					for _, which := range args[1:] {
						r, err := members.FindRequest(ctx, tx, l.ID, which)
						if err != nil {
							return err
						}
						if _, err := app.NewGreeter(e.cfg).Decide(ctx, tx, l, r.ID, approve, whoAmI(), reason); err != nil {
							return fmt.Errorf("%w; nothing changed", err)
						}
						done = append(done, r.Address)
					}
					return nil
				})
				if err != nil {
					return err
				}
				d.Notify.Poke(notify.Outbound, "")
				for _, a := range done {
					if approve {
						fmt.Fprintf(e.io.Stdout, "approved %s: subscribed, and welcomed\n", a)
					} else {
						fmt.Fprintf(e.io.Stdout, "refused %s, and told so\n", a)
					}
				}
				return nil
			})
		},
	}
	if !approve {
		c.Use = "refuse LIST ID|ADDRESS..."
		c.Short = "Refuse subscription requests: each person is told, with --reason"
		c.Flags().StringVar(&reason, "reason", "", "reason told to the person")
	}
	return c
}
