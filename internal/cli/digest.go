package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/digest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/notify"
)

func digestCmd(e *env) *cobra.Command {
	return group("digest", "List, show and send a list's digest issues",
		digestLsCmd(e), digestShowCmd(e), digestSendCmd(e))
}

func digestLsCmd(e *env) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "ls LIST",
		Short: "List the digest issues cut so far, newest first",
		Args:  nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				is, err := digest.Issues(c.Context(), d, l.ID, limit)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "VOL\tISSUE\tARTICLES\tPOSTS\tBYTES\tCAUSE\tCUT")
				for _, i := range is {
					fmt.Fprintf(tw, "%d\t%d\t%d-%d\t%d\t%d\t%s\t%s\n", i.Volume, i.Number, i.First, i.Last, i.Posts, i.Bytes,
						i.Cause, i.CutAt.UTC().Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 50, "show at most this many issues")
	return c
}

func digestShowCmd(e *env) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:     "show LIST VOLUME ISSUE",
		Short:   "Print one digest issue as members get it (before list headers and footer)",
		Example: "  parley digest show dev@lists.example.org 1 12 --format plain",
		Args:    nArgs(3, 3, "LIST VOLUME ISSUE"),
		RunE: func(c *cobra.Command, args []string) error {
			vol, err1 := strconv.Atoi(args[1])
			num, err2 := strconv.Atoi(args[2])
			if err1 != nil || err2 != nil {
				return usagef("%s: VOLUME and ISSUE are numbers", c.CommandPath())
			}
			if format != digest.FormatMIME && format != digest.FormatPlain && format != digest.FormatSummary {
				return usagef("--format %q: want mime, plain or summary", format)
			}
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				is, err := digest.Find(c.Context(), d, l.ID, vol, num)
				if err != nil {
					return err
				}
				posts, err := archive.Articles(c.Context(), d, l.ID, is.First, is.Last, is.Listed)
				if err != nil {
					return err
				}
				v := digest.Variant{Format: format, Spans: []digest.Span{{From: is.First, Until: is.Last + 1}}}
				l.Digest.Formats = []string{format} // show what was asked for, offered or not
				msg, err := digest.Render(digest.Edition{List: l, Issue: is, Posts: posts, Variant: v, ArchiveURL: app.ArchiveURL(e.cfg), WebURL: e.cfg.HTTP.BaseURL})
				if err != nil {
					return err
				}
				_, err = e.io.Stdout.Write(msg)
				return err
			})
		},
	}
	c.Flags().StringVar(&format, "format", "mime", "mime, plain or summary")
	return c
}

func digestSendCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "send LIST",
		Short: "Cut the list's next digest issue now, with the posts waiting for it, and queue it",
		Args:  nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				r, err := digest.Cut(c.Context(), d.DB, l.ID, digest.CutOptions{Cause: digest.CauseManual, Now: time.Now(),
					MaxMessage: digest.Limit(l, e.cfg.SMTP.MaxMessageBytes)})
				if err != nil {
					return err
				}
				if !r.Cut {
					fmt.Fprintf(e.io.Stdout, "nothing to send: no post waits for a digest of %s, or no member takes one\n", l.Address)
					return nil
				}
				d.Notify.Poke(notify.Outbound, "")
				is := r.Issue
				fmt.Fprintf(e.io.Stdout, "queued %s: articles %d-%d, %d posts\n", digest.Title(l, is), is.First, is.Last, is.Posts)
				if r.More {
					fmt.Fprintln(e.io.Stdout, "more posts wait than one issue holds; run it again for the next")
				}
				return nil
			})
		},
	}
}
