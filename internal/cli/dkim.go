package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/dkimkeys"
	"github.com/parley-list/parley/internal/mailaddr"
)

func dkimCmd(e *env) *cobra.Command {
	return group("dkim", "Make DKIM signing keys for list domains and show their DNS records",
		dkimKeygenCmd(e), dkimLsCmd(e))
}

func dkimKeygenCmd(e *env) *cobra.Command {
	var selector, kind string
	c := &cobra.Command{
		Use:   "keygen DOMAIN",
		Short: "Make a signing key for DOMAIN and print the DNS TXT record to publish",
		Long: `Make a DKIM key for a list domain and store it in the database; from then on
every copy parley sends for lists on that domain is signed with it (and with
any other key the domain has: make an rsa and an ed25519 key to sign with
both). Publish the printed TXT record before relying on it.`,
		Example: "  parley dkim keygen lists.example.org\n  parley dkim keygen lists.example.org --type ed25519 --selector parley-ed",
		Args:    nArgs(1, 1, "one DOMAIN"),
		RunE: func(c *cobra.Command, args []string) error {
			domain, err := mailaddr.ParseDomain(args[0])
			if err != nil {
				return err
			}
			k, err := dkimkeys.Generate(domain, selector, kind)
			if err != nil {
				return err
			}
			name, value, err := k.TXT()
			if err != nil {
				return err
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				if err := dkimkeys.Save(c.Context(), d, k); err != nil {
					return err
				}
				fmt.Fprintf(e.io.Stdout, "%s. IN TXT %s\n", name, quoteTXT(value))
				return nil
			})
		},
	}
	c.Flags().StringVar(&selector, "selector", "parley", "DKIM selector (the DNS name's first label)")
	c.Flags().StringVar(&kind, "type", "rsa", "key type: rsa (2048 bits) or ed25519")
	return c
}

func dkimLsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the signing keys and the DNS records they need",
		Args:  nArgs(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return e.withDB(c.Context(), func(d *app.Database) error {
				ks, err := dkimkeys.All(c.Context(), d)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "DOMAIN\tSELECTOR\tTYPE\tTXT RECORD")
				for _, k := range ks {
					name, value, err := k.TXT()
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s. IN TXT %s\n", k.Domain, k.Selector, k.Algorithm, name, quoteTXT(value))
				}
				return tw.Flush()
			})
		},
	}
}

// quoteTXT writes a TXT value as DNS zone-file strings of at most 255
// characters each (an RSA-2048 key is longer than one string may be).
func quoteTXT(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	return strings.Join(append(parts, `"`+v+`"`), " ")
}
