package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/moderation"
)

func heldCmd(e *env) *cobra.Command {
	return group("held", "List and decide on posts held for moderation",
		heldLsCmd(e), heldShowCmd(e), heldDecideCmd(e, "approve"), heldDecideCmd(e, "reject"), heldDecideCmd(e, "discard"))
}

// whoAmI names the operator in moderation records.
func whoAmI() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

func heldLsCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls [LIST]",
		Short: "List the posts waiting for a moderator (of every list without LIST)",
		Args:  nArgs(0, 1, "at most one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			return e.withDB(ctx, func(d *app.Database) error {
				names, listID, err := listNames(ctx, d, args)
				if err != nil {
					return err
				}
				hs, err := moderation.HeldPosts(ctx, d, listID)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.io.Stdout, nonNil(hs))
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tLIST\tRECEIVED\tFROM\tSUBJECT\tREASON")
				for _, h := range hs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.ID, names[h.ListID], h.ReceivedAt.UTC().Format(time.DateTime), h.From, clip(h.Subject, 50), h.Reason)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// listNames resolves an optional LIST argument: the list's ID (0 for
// every list) and the address of each list by ID, for listings.
func listNames(ctx context.Context, q db.Querier, args []string) (map[int64]string, int64, error) {
	names := map[int64]string{}
	if len(args) == 1 {
		l, err := lists.Get(ctx, q, args[0])
		if err != nil {
			return nil, 0, err
		}
		names[l.ID] = l.Address
		return names, l.ID, nil
	}
	all, err := lists.All(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	for _, l := range all {
		names[l.ID] = l.Address
	}
	return names, 0, nil
}

func heldID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.Invalidf("%q is not a held post ID", s)
	}
	return id, nil
}

func heldShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Print a held post's raw message",
		Args:  nArgs(1, 1, "one ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := heldID(args[0])
			if err != nil {
				return err
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				h, err := moderation.Get(c.Context(), d, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.io.Stderr, "held post %d (%s): %s: %s\n", h.ID, h.State, h.Rule, h.Reason)
				_, err = e.io.Stdout.Write(h.Raw)
				return err
			})
		},
	}
}

func heldDecideCmd(e *env, verb string) *cobra.Command {
	var reason string
	short := map[string]string{
		"approve": "Approve a held post: archive it and send it to the members",
		"reject":  "Reject a held post and tell its author (with --reason)",
		"discard": "Discard a held post silently",
	}[verb]
	c := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  nArgs(1, 1, "one ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := heldID(args[0])
			if err != nil {
				return err
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				svc := app.NewModeration(e.cfg, d, e.log)
				switch verb {
				case "approve":
					st, err := svc.Approve(c.Context(), 0, id, whoAmI())
					if err != nil {
						return err
					}
					fmt.Fprintf(e.io.Stdout, "approved %d: archived as article %d\n", id, st.Article)
					return nil
				case "reject":
					err = svc.Reject(c.Context(), 0, id, reason, whoAmI())
				default:
					err = svc.Discard(c.Context(), 0, id, whoAmI())
				}
				if err == nil {
					fmt.Fprintf(e.io.Stdout, "%sed %d\n", trimE(verb), id)
				}
				return err
			})
		},
	}
	if verb == "reject" {
		c.Flags().StringVar(&reason, "reason", "", "reason told to the author")
	}
	return c
}

func trimE(verb string) string {
	if verb[len(verb)-1] == 'e' {
		return verb[:len(verb)-1]
	}
	return verb
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
