package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mbox"
)

func archiveCmd(e *env) *cobra.Command {
	return group("archive", "Read, export, import and rebuild a list's archive",
		archiveLsCmd(e), archiveThreadsCmd(e), archiveShowCmd(e), archiveExportCmd(e),
		archiveImportCmd(e), archiveRethreadCmd(e))
}

// withList opens the database and looks up the list named by address.
func (e *env) withList(c *cobra.Command, address string, fn func(d *app.Database, l lists.List) error) error {
	return e.withDB(c.Context(), func(d *app.Database) error {
		l, err := lists.Get(c.Context(), d, address)
		if err != nil {
			return err
		}
		return fn(d, l)
	})
}

// lsEntry is one line of `archive ls --json`.
type lsEntry struct {
	Article   int64      `json:"article"`
	MessageID string     `json:"message_id"`
	Thread    int64      `json:"thread"`
	Parent    *int64     `json:"parent"`
	Subject   string     `json:"subject"`
	From      string     `json:"from"`
	Date      *time.Time `json:"date"`
	Archived  time.Time  `json:"archived"`
	Size      int64      `json:"size"`
}

func archiveLsCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls LIST",
		Short: "List the archived posts (with --json: one JSON object per line)",
		Args:  nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				es, err := archive.Entries(c.Context(), d, l.ID, time.Time{})
				if err != nil {
					return err
				}
				parents := archive.Parents(es)
				w := bufio.NewWriter(e.io.Stdout)
				defer w.Flush()
				if asJSON {
					return writeEntriesJSON(w, es, parents)
				}
				tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ARTICLE\tDATE\tFROM\tSUBJECT\tTHREAD")
				for _, en := range es {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", en.Article, dateOf(en).Format(time.DateTime), clip(en.From, 30), clip(en.Subject, 60), en.ThreadID)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return c
}

func writeEntriesJSON(w io.Writer, es []archive.Entry, parents map[int64]int64) error {
	enc := json.NewEncoder(w)
	for _, en := range es {
		out := lsEntry{Article: en.Article, MessageID: en.MessageID, Thread: en.ThreadID, Subject: en.Subject,
			From: en.From, Date: en.SentAt, Archived: en.ReceivedAt, Size: en.Size}
		if p, ok := parents[en.Article]; ok {
			out.Parent = &p
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return nil
}

func dateOf(en archive.Entry) time.Time {
	if en.SentAt != nil {
		return en.SentAt.UTC()
	}
	return en.ReceivedAt.UTC()
}

func archiveThreadsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "threads LIST",
		Short: "Print the archive as indented thread trees",
		Args:  nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				es, err := archive.Entries(c.Context(), d, l.ID, time.Time{})
				if err != nil {
					return err
				}
				w := bufio.NewWriter(e.io.Stdout)
				defer w.Flush()
				return archive.WriteTrees(w, es, archive.Parents(es))
			})
		},
	}
}

func articleArg(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errs.Invalidf("%q is not an article number", s)
	}
	return n, nil
}

func archiveShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show LIST ARTICLE",
		Short: "Print one archived post's raw message",
		Args:  nArgs(2, 2, "LIST and ARTICLE"),
		RunE: func(c *cobra.Command, args []string) error {
			n, err := articleArg(args[1])
			if err != nil {
				return err
			}
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				raw, err := archive.Raw(c.Context(), d, l.ID, n)
				if err != nil {
					return err
				}
				_, err = e.io.Stdout.Write(raw)
				return err
			})
		},
	}
}

func archiveExportCmd(e *env) *cobra.Command {
	var since string
	c := &cobra.Command{
		Use:   "export LIST",
		Short: "Write the archive to standard output as mboxrd",
		Example: `  parley archive export dev@lists.example.org > dev.mbox
  parley archive export dev@lists.example.org --since 2026-01-01 | gzip > dev-2026.mbox.gz`,
		Args: nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			var from time.Time
			if since != "" {
				t, err := time.Parse(time.DateOnly, since)
				if err != nil {
					return errs.Invalidf("--since %q: want YYYY-MM-DD", since)
				}
				from = t
			}
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				w := mbox.NewWriter(e.io.Stdout)
				err := archive.EachRaw(c.Context(), d, l.ID, from, func(from string, at time.Time, raw []byte) error {
					return w.Write(from, at, raw)
				})
				if err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
	c.Flags().StringVar(&since, "since", "", "only posts archived on or after this date (YYYY-MM-DD)")
	return c
}

func archiveRethreadCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rethread LIST",
		Short: "Rebuild every thread of a list from the archived messages",
		Args:  nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				tx, err := d.BeginTxx(c.Context(), nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				n, err := archive.Rethread(c.Context(), tx, l.ID, e.cfg.Hostname)
				if err != nil {
					return err
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				fmt.Fprintf(e.io.Stdout, "rethreaded %d posts of %s\n", n, l.Address)
				return nil
			})
		},
	}
}
