package cli

import (
	"bufio"
	"fmt"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/bounce"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notify"
)

func memberCmd(e *env) *cobra.Command {
	return group("member", "Add, remove, list and change members of a list",
		memberAddCmd(e), memberRmCmd(e), memberLsCmd(e), memberSetCmd(e), memberPasswordCmd(e), memberFeedCmd(e))
}

// maxLine bounds one line of an address file.
const maxLine = 4096

// addInput is one address to add and where it came from, for messages.
type addInput struct {
	where, text string
}

// readAddresses reads addresses as an address book exports them: one
// or more per line, comma-separated, each bare or with a display name
// ("Ann Lee <ann@example.org>", "\"Lee, Ann\" <ann@example.org>"); blank
// lines and lines starting with '#' are skipped.
func readAddresses(r io.Reader, name string) ([]addInput, error) {
	var in []addInput
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxLine), maxLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, n)
		if as, err := mail.ParseAddressList(line); err == nil && strings.ContainsAny(line, ",<") {
			for _, a := range as {
				in = append(in, addInput{where: where, text: members.Named(a.Name, a.Address)})
			}
			continue
		}
		in = append(in, addInput{where: where, text: line})
	}
	if err := sc.Err(); err != nil {
		return nil, usagef("%s: %v", name, err)
	}
	return in, nil
}

// parseAll parses every input, reporting each bad or repeated one. Bad
// addresses abort the whole command before anything changes.
func (e *env) parseAll(in []addInput, role members.Role, mode members.Delivery) (out []members.New, repeats int, err error) {
	seen := map[string]string{}
	bad := 0
	for _, a := range in {
		m, err := members.ParseNew(a.text, role, mode)
		if err != nil {
			fmt.Fprintf(e.io.Stderr, "parley: %s: %v\n", a.where, err)
			bad++
			continue
		}
		norm := m.Address.String()
		if first, dup := seen[norm]; dup {
			fmt.Fprintf(e.io.Stdout, "skipped %s (%s repeats %s)\n", a.text, a.where, first)
			repeats++
			continue
		}
		seen[norm] = a.where
		out = append(out, m)
	}
	if bad > 0 {
		return nil, 0, errs.Invalidf("%d malformed address(es); nothing changed", bad)
	}
	return out, repeats, nil
}

func memberAddCmd(e *env) *cobra.Command {
	var file, role, mode string
	var skipExisting, quiet bool
	c := &cobra.Command{
		Use:   "add LIST [ADDRESS...]",
		Short: "Add members (from arguments, or one per line from --file, '-' for stdin)",
		Long: `Add members to a list. Every address is checked first: if any is malformed,
or already a member (unless --skip-existing), each problem is reported and
nothing changes. Otherwise all are added in one transaction and each
address's result is printed.`,
		Example: `  parley member add dev@lists.example.org bob@example.org carol@example.org
  parley member add dev@lists.example.org --file members.txt --skip-existing
  cut -d, -f1 export.csv | parley member add dev@lists.example.org --file -`,
		Args: nArgs(1, -1, "LIST and at least one ADDRESS or --file"),
		RunE: func(c *cobra.Command, args []string) error {
			r, err := members.ParseRole(role)
			if err != nil {
				return err
			}
			d, err := members.ParseDelivery(mode)
			if err != nil {
				return err
			}
			var in []addInput
			for i, a := range args[1:] {
				in = append(in, addInput{where: fmt.Sprintf("argument %d", i+2), text: a})
			}
			if file != "" {
				rc, err := e.open(file)
				if err != nil {
					return err
				}
				fromFile, err := readAddresses(rc, file)
				rc.Close()
				if err != nil {
					return err
				}
				in = append(in, fromFile...)
			}
			if len(in) == 0 {
				return usagef("%s: no addresses given", c.CommandPath())
			}
			ms, repeats, err := e.parseAll(in, r, d)
			if err != nil {
				return err
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				return e.addMembers(c, d, args[0], ms, addOptions{skipExisting: skipExisting, quiet: quiet, repeats: repeats})
			})
		},
	}
	c.Flags().StringVar(&file, "file", "", "read addresses from FILE, one per line ('-' for stdin)")
	c.Flags().StringVar(&role, "role", "member", "role: member, moderator or owner")
	c.Flags().StringVar(&mode, "delivery", "regular", "delivery: "+members.DeliveryModes)
	c.Flags().BoolVar(&skipExisting, "skip-existing", false, "skip addresses that are already members instead of refusing")
	c.Flags().BoolVar(&quiet, "quiet", false, "send the new members no welcome")
	return c
}

// addOptions are member add's choices.
type addOptions struct {
	skipExisting bool // skip members already there instead of refusing
	quiet        bool // no welcome
	repeats      int  // addresses given more than once, skipped
}

// addMembers adds ms in one transaction after checking for existing
// members, so a refusal changes nothing.
func (e *env) addMembers(c *cobra.Command, d *app.Database, list string, ms []members.New, o addOptions) error {
	ctx := c.Context()
	defer d.Notify.Poke(notify.Outbound, "") // the welcomes
	return db.InTx(ctx, d.DB, func(tx *sqlx.Tx) error {
		l, err := lists.Get(ctx, tx, list)
		if err != nil {
			return err
		}
		norms := make([]string, len(ms))
		for i, m := range ms {
			norms[i] = m.Address.String()
		}
		existing, err := members.Existing(ctx, tx, l.ID, norms)
		if err != nil {
			return err
		}
		if len(existing) > 0 && !o.skipExisting {
			for _, x := range existing {
				fmt.Fprintf(e.io.Stderr, "parley: %s is already a member of %s\n", x, l.Address)
			}
			return errs.Kindf(members.ErrExists, "%d address(es) already members of %s; nothing changed (--skip-existing adds the rest)", len(existing), l.Address)
		}
		added, err := members.Add(ctx, tx, l.ID, ms)
		if err != nil {
			return err
		}
		isAdded := make(map[string]bool, len(added))
		for _, a := range added {
			isAdded[a] = true
		}
		w := bufio.NewWriter(e.io.Stdout)
		greeter := app.NewGreeter(e.cfg)
		for _, m := range ms {
			if isAdded[m.Address.String()] {
				if !o.quiet {
					if err := greeter.Welcome(ctx, tx, l, m.Given, m.Name); err != nil {
						return err
					}
				}
				fmt.Fprintf(w, "added %s\n", m.Given)
			} else {
				fmt.Fprintf(w, "skipped %s (already a member)\n", m.Given)
			}
		}
		if n := len(ms) + o.repeats; n > 1 {
			fmt.Fprintf(w, "%s: %d added, %d skipped (%d already members, %d repeated)\n", l.Address, len(added),
				n-len(added), len(ms)-len(added), o.repeats)
		}
		return w.Flush()
	})
}

func memberRmCmd(e *env) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:     "rm LIST ADDRESS...",
		Short:   "Remove members (all or nothing); each is told, when the list sends goodbyes, unless --quiet",
		Example: `  parley member rm dev@lists.example.org bob@example.org`,
		Args:    nArgs(2, -1, "LIST and at least one ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			return e.withDB(ctx, func(d *app.Database) error {
				defer d.Notify.Poke(notify.Outbound, "") // the goodbyes, after commit
				return db.InTx(ctx, d.DB, func(tx *sqlx.Tx) error {
					l, err := lists.Get(ctx, tx, args[0])
					if err != nil {
						return err
					}
					for _, a := range args[1:] {
						if err := members.Remove(ctx, tx, l.ID, a); err != nil {
							return fmt.Errorf("%w; nothing changed", err)
						}
						if !quiet {
							if err := app.NewGreeter(e.cfg).Removed(ctx, tx, l, a, "by the list's owners", false); err != nil {
								return err
							}
						}
					}
					for _, a := range args[1:] {
						fmt.Fprintf(e.io.Stdout, "removed %s\n", a)
					}
					return nil
				})
			})
		},
	}
	c.Flags().BoolVar(&quiet, "quiet", false, "tell neither the members nor the owners")
	return c
}

func memberPasswordCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "password LIST ADDRESS",
		Short: "Give a member a new archive password and print it",
		Long: `Give a member a new random password for reading the list's archive over
IMAP (user: their address), replacing any earlier one, and print it. Members
can also get one themselves by mailing "password" to LIST-request.`,
		Example: `  parley member password dev@lists.example.org bob@example.org`,
		Args:    nArgs(2, 2, "LIST and one ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			return e.withDB(ctx, func(d *app.Database) error {
				return db.InTx(ctx, d.DB, func(tx *sqlx.Tx) error {
					l, err := lists.Get(ctx, tx, args[0])
					if err != nil {
						return err
					}
					m, err := members.Get(ctx, tx, l.ID, args[1])
					if err != nil {
						return err
					}
					pw, err := members.NewArchivePassword(ctx, tx, m.ID)
					if err != nil {
						return err
					}
					fmt.Fprintln(e.io.Stdout, pw)
					return nil
				})
			})
		},
	}
}

func memberLsCmd(e *env) *cobra.Command {
	var asJSON bool
	var role, status string
	c := &cobra.Command{
		Use:   "ls LIST",
		Short: "List a list's members",
		Args:  nArgs(1, 1, "one LIST"),
		RunE: func(c *cobra.Command, args []string) error {
			var f members.Filter
			var err error
			if role != "" {
				if f.Role, err = members.ParseRole(role); err != nil {
					return err
				}
			}
			if status != "" {
				if f.Status, err = members.ParseStatus(status); err != nil {
					return err
				}
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				l, err := lists.Get(c.Context(), d, args[0])
				if err != nil {
					return err
				}
				ms, err := members.All(c.Context(), d, l.ID, f)
				if err != nil {
					return err
				}
				st, err := bounce.Standings(c.Context(), d, l.ID, bounce.DefaultScoring)
				if err != nil {
					return err
				}
				byAddr := make(map[string]bounce.Standing, len(st))
				for _, s := range st {
					byAddr[s.AddressNorm] = s
				}
				if asJSON {
					type row struct {
						members.Member
						Bounces *bounce.Standing `json:"bounces,omitempty"`
					}
					rows := make([]row, len(ms))
					for i, m := range ms {
						rows[i] = row{Member: m}
						if s, ok := byAddr[m.AddressNorm]; ok {
							rows[i].Bounces = &s
						}
					}
					return writeJSON(e.io.Stdout, rows)
				}
				return writeMembers(e.io.Stdout, ms, byAddr)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&role, "role", "", "only members with this role")
	c.Flags().StringVar(&status, "status", "", "only members with this status (active or disabled)")
	return c
}

func writeMembers(w io.Writer, ms []members.Member, bounces map[string]bounce.Standing) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tNAME\tROLE\tDELIVERY\tSTATUS\tMODERATED\tJOINED\tBOUNCE SCORE\tLAST BOUNCE")
	for _, m := range ms {
		status := string(m.Status)
		if m.Status == members.StatusDisabled && m.DisabledReason != "" {
			status += " (" + clip(m.DisabledReason, 40) + ")"
		}
		score, last := "-", "-"
		if b, ok := bounces[m.AddressNorm]; ok {
			score = strconv.FormatFloat(b.Score, 'f', -1, 64)
			last = b.Last.UTC().Format(time.DateOnly) + " " + b.LastKind + " " + b.LastStatus
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Address, orDash(m.DisplayName), m.Role, m.Delivery, status,
			onOff(m.Moderated), m.JoinedAt.UTC().Format(time.DateOnly), score, strings.TrimSpace(last))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func parseOnOff(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "yes":
		return true, nil
	case "off", "no":
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errs.Invalidf("%q is not on or off", s)
	}
	return b, nil
}

func memberSetCmd(e *env) *cobra.Command {
	var role, mode, status, moderated string
	c := &cobra.Command{
		Use:     "set LIST ADDRESS",
		Short:   "Change a member's role, delivery, status or moderation",
		Example: `  parley member set dev@lists.example.org bob@example.org --role moderator --moderated off`,
		Args:    nArgs(2, 2, "LIST and ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := memberSettings(c, role, mode, status, moderated)
			if err != nil {
				return err
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				l, err := lists.Get(c.Context(), d, args[0])
				if err != nil {
					return err
				}
				m, err := members.Update(c.Context(), d, l.ID, args[1], s)
				if err != nil {
					return err
				}
				return writeMembers(e.io.Stdout, []members.Member{m}, nil)
			})
		},
	}
	c.Flags().StringVar(&role, "role", "", "member, moderator or owner")
	c.Flags().StringVar(&mode, "delivery", "", members.DeliveryModes)
	c.Flags().StringVar(&status, "status", "", "active or disabled")
	c.Flags().StringVar(&moderated, "moderated", "", "on: hold this member's posts for moderation; off: don't")
	return c
}

func memberSettings(c *cobra.Command, role, mode, status, moderated string) (members.Settings, error) {
	var s members.Settings
	fs := c.Flags()
	if fs.Changed("role") {
		r, err := members.ParseRole(role)
		if err != nil {
			return s, err
		}
		s.Role = &r
	}
	if fs.Changed("delivery") {
		d, err := members.ParseDelivery(mode)
		if err != nil {
			return s, err
		}
		s.Delivery = &d
	}
	if fs.Changed("status") {
		st, err := members.ParseStatus(status)
		if err != nil {
			return s, err
		}
		s.Status = &st
	}
	if fs.Changed("moderated") {
		b, err := parseOnOff(moderated)
		if err != nil {
			return s, err
		}
		s.Moderated = &b
	}
	if s == (members.Settings{}) {
		return s, usagef("%s: nothing to change (see --help)", c.CommandPath())
	}
	return s, nil
}

func memberFeedCmd(e *env) *cobra.Command {
	var revoke bool
	c := &cobra.Command{
		Use:   "feed-url LIST ADDRESS",
		Short: "Give a member a secret feed URL for a private list's archive (or revoke it)",
		Long: `Feed readers cannot log in, so a member of a list whose archive is private
reads its Atom and RSS feeds at a secret URL. This makes a new one (the old
one stops working) and prints it; --revoke leaves none.`,
		Args: nArgs(2, 2, "LIST and one ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withList(c, args[0], func(d *app.Database, l lists.List) error {
				m, err := members.Get(c.Context(), d, l.ID, args[1])
				if err != nil {
					return err
				}
				tok, err := members.NewFeedToken(c.Context(), d, m.ID, revoke)
				if err != nil || revoke {
					if err == nil {
						fmt.Fprintf(e.io.Stdout, "the feed URL of %s on %s is revoked\n", m.Address, l.Address)
					}
					return err
				}
				base := strings.TrimSuffix(e.cfg.HTTP.BaseURL, "/")
				fmt.Fprintf(e.io.Stdout, "%s%sfeed/%s/atom.xml\n%s%sfeed/%s/rss.xml\n", base, lists.WebPath(l), tok, base, lists.WebPath(l), tok)
				return nil
			})
		},
	}
	c.Flags().BoolVar(&revoke, "revoke", false, "revoke the member's feed URL")
	return c
}
