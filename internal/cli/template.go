package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/commands"
	"github.com/parley-list/parley/internal/lists"
)

func listTemplateCmd(e *env) *cobra.Command {
	set := &cobra.Command{
		Use:   "set LIST NAME FILE",
		Short: "Replace one of a list's reply texts (Go text/template; FILE '-' for stdin)",
		Long: "Replace a reply text for one list. NAME is one of: " + fmt.Sprint(commands.TemplateNames()) + `.
The template sees .Address .Name .Description .Policy .PolicyText .Archive
.Request .Join .Leave .Owner .IMAPServer .IMAPPort .IMAPSecurity .Mailbox
.ArchiveURL .WebURL, and may include the built-in part that says how to read
the archive: {{template "reading.txt" .}}. It is checked before it is stored;
"parley list template show LIST NAME --builtin" prints the built-in text.`,
		Args: nArgs(3, 3, "LIST, NAME and FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			rc, err := e.open(args[2])
			if err != nil {
				return err
			}
			body, err := io.ReadAll(io.LimitReader(rc, 64<<10))
			rc.Close()
			if err != nil {
				return err
			}
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				if err := commands.SetTemplate(c.Context(), d, l, args[1], string(body)); err != nil {
					return err
				}
				fmt.Fprintf(e.io.Stdout, "template %s of %s set\n", args[1], l.Address)
				return nil
			})
		},
	}
	return group("template", "Show, change and reset the texts parley writes for a list",
		templateLsCmd(e), templateShowCmd(e), set, templateResetCmd(e))
}

func templateLsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "ls LIST",
		Short: "List the texts and whether the list has its own",
		Args:  nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tTEXT")
				for _, name := range commands.TemplateNames() {
					_, own, err := commands.Template(c.Context(), d, l, name)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%s\t%s\n", name, map[bool]string{true: "the list's own", false: "built-in"}[own])
				}
				return tw.Flush()
			})
		},
	}
}

func templateShowCmd(e *env) *cobra.Command {
	var builtin bool
	c := &cobra.Command{
		Use:   "show LIST NAME",
		Short: "Print a text as the list uses it (its own, else the built-in one)",
		Args:  nArgs(2, 2, "LIST and NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			if builtin {
				body, ok := commands.Builtin(args[1])
				if !ok {
					return usagef("no template %q (there are: %s)", args[1], strings.Join(commands.TemplateNames(), ", "))
				}
				_, err := io.WriteString(e.io.Stdout, body)
				return err
			}
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				body, _, err := commands.Template(c.Context(), d, l, args[1])
				if err != nil {
					return err
				}
				_, err = io.WriteString(e.io.Stdout, body)
				return err
			})
		},
	}
	c.Flags().BoolVar(&builtin, "builtin", false, "print the built-in text, whatever the list uses")
	return c
}

func templateResetCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "reset LIST NAME",
		Short: "Drop the list's own text: the built-in one is used again",
		Args:  nArgs(2, 2, "LIST and NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				had, err := commands.ResetTemplate(c.Context(), d, l, args[1])
				if err != nil {
					return err
				}
				if !had {
					fmt.Fprintf(e.io.Stdout, "%s of %s was the built-in text already\n", args[1], l.Address)
					return nil
				}
				fmt.Fprintf(e.io.Stdout, "%s of %s is the built-in text again\n", args[1], l.Address)
				return nil
			})
		},
	}
}
