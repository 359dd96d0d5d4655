package cli

import (
	"database/sql"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
)

func banCmd(e *env) *cobra.Command {
	return group("ban", "Manage address patterns that may not post (per list, or --global)",
		banAddCmd(e), banRmCmd(e), banLsCmd(e))
}

// banScope resolves "LIST" or --global to a list id (NULL for global).
func (e *env) banScope(c *cobra.Command, d *app.Database, args []string, global bool) (sql.NullInt64, string, error) {
	if global {
		return sql.NullInt64{}, "all lists", nil
	}
	if len(args) == 0 {
		return sql.NullInt64{}, "", usagef("%s: give a LIST or --global", c.CommandPath())
	}
	l, err := lists.Get(c.Context(), d, args[0])
	if err != nil {
		return sql.NullInt64{}, "", err
	}
	return sql.NullInt64{Int64: l.ID, Valid: true}, l.Address, nil
}

func banAddCmd(e *env) *cobra.Command {
	var global bool
	c := &cobra.Command{
		Use:     "add [LIST] PATTERN",
		Short:   "Ban an address pattern ('*' any run of characters, '?' one)",
		Example: "  parley ban add dev@lists.example.org '*@spam.example'\n  parley ban add --global 'spammer@example.com'",
		Args:    nArgs(1, 2, "[LIST] PATTERN"),
		RunE: func(c *cobra.Command, args []string) error {
			pattern, ok := ingest.ParseBanPattern(args[len(args)-1])
			if !ok {
				return errs.Invalidf("%q is not a usable pattern", args[len(args)-1])
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				id, scope, err := e.banScope(c, d, args[:len(args)-1], global)
				if err != nil {
					return err
				}
				_, err = d.ExecContext(c.Context(), `INSERT INTO bans (list_id, pattern) VALUES ($1, $2)`, id, pattern)
				if _, dup := db.IsUniqueViolation(err); dup {
					return errs.Invalidf("%s is already banned on %s", pattern, scope)
				}
				if err == nil {
					fmt.Fprintf(e.io.Stdout, "banned %s on %s\n", pattern, scope)
				}
				return err
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
			pattern, _ := ingest.ParseBanPattern(args[len(args)-1])
			return e.withDB(c.Context(), func(d *app.Database) error {
				id, scope, err := e.banScope(c, d, args[:len(args)-1], global)
				if err != nil {
					return err
				}
				res, err := d.ExecContext(c.Context(), `DELETE FROM bans WHERE list_id IS NOT DISTINCT FROM $1 AND pattern = $2`, id, pattern)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
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
				var rows []struct {
					Scope   string `db:"scope"`
					Pattern string `db:"pattern"`
				}
				q := `SELECT coalesce(l.address, '(all lists)') AS scope, b.pattern FROM bans b LEFT JOIN lists l ON l.id = b.list_id`
				var err error
				if len(args) == 1 {
					l, lerr := lists.Get(c.Context(), d, args[0])
					if lerr != nil {
						return lerr
					}
					err = d.SelectContext(c.Context(), &rows, q+` WHERE b.list_id = $1 OR b.list_id IS NULL ORDER BY 1, 2`, l.ID)
				} else {
					err = d.SelectContext(c.Context(), &rows, q+` ORDER BY 1, 2`)
				}
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
