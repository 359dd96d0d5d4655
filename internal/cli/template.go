package cli

import (
	"fmt"
	"io"

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
The template sees .Address .Name .Description .Policy .Archive .Request .Join
.Leave .Owner; it is checked before it is stored.`,
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
	return group("template", "Change the texts parley writes for a list", set)
}
