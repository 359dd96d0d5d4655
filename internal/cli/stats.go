package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/bounce"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/stats"
)

func listStatsCmd(e *env) *cobra.Command {
	var months int
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats LIST",
		Short: "Posts, posters, joins, leaves, held and approved posts, month by month",
		Long: `The figures a list owner reports: for each of the last months (UTC), the
posts archived (imports left out) and their different authors, the members
who joined and left, and the posts held for a moderator and approved; then
the period's totals, with the different authors over the whole period.`,
		Args: nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			if months < 1 {
				return usagef("--months: want at least 1")
			}
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				now := time.Now().UTC()
				since := time.Date(now.Year(), now.Month()-time.Month(months-1), 1, 0, 0, 0, 0, time.UTC)
				ms, err := stats.Months(c.Context(), d, l.ID, since)
				if err != nil {
					return err
				}
				posters, err := stats.Posters(c.Context(), d, l.ID, since)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.io.Stdout, struct {
						Months  []stats.Month `json:"months"`
						Posters int           `json:"posters"`
					}{nonNil(ms), posters})
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "MONTH\tPOSTS\tPOSTERS\tJOINED\tLEFT\tHELD\tAPPROVED\t")
				var t stats.Month
				for _, m := range ms {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", m.Month.Format("2006-01"), m.Posts, m.Posters, m.Joined, m.Left, m.Held, m.Approved)
					t.Posts, t.Joined, t.Left, t.Held, t.Approved = t.Posts+m.Posts, t.Joined+m.Joined, t.Left+m.Left, t.Held+m.Held, t.Approved+m.Approved
				}
				fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Posts, posters, t.Joined, t.Left, t.Held, t.Approved)
				return tw.Flush()
			})
		},
	}
	c.Flags().IntVar(&months, "months", 12, "how many months, this one included")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func bouncesCmd(e *env) *cobra.Command {
	ls := &cobra.Command{
		Use:   "ls LIST",
		Short: "The members' bounce scores and the latest bounces",
		Long: `Each address of the list with bounces on record: its score (the weights of
its bounces of the last 7 days: hard 1, soft 0.5; delivery stops at 5), how
many are kept, and the last one; then the latest bounces themselves.`,
		Args: nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				st, err := bounce.Standings(c.Context(), d, l.ID, bounce.DefaultScoring)
				if err != nil {
					return err
				}
				evs, err := bounce.Events(c.Context(), d, l.ID, 50)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ADDRESS\tSCORE\tBOUNCES\tLAST\tKIND\tSTATUS")
				for _, s := range st {
					fmt.Fprintf(tw, "%s\t%g\t%d\t%s\t%s\t%s\n", s.AddressNorm, s.Score, s.Events, s.Last.UTC().Format(time.DateTime), s.LastKind, orDash(s.LastStatus))
				}
				fmt.Fprintln(tw, "\nWHEN\tADDRESS\tKIND\tSTATUS\tDIAGNOSTIC")
				for _, ev := range evs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.At.UTC().Format(time.DateTime), ev.AddressNorm, ev.Kind, orDash(ev.Status), clip(ev.Diagnostic, 60))
				}
				return tw.Flush()
			})
		},
	}
	return group("bounces", "Look at the bounces the list's mail got", ls)
}
