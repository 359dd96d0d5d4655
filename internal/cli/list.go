package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/commands"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
)

func listCmd(e *env) *cobra.Command {
	return group("list", "Create, inspect, change and delete lists",
		listCreateCmd(e), listLsCmd(e), listShowCmd(e), listSetCmd(e), listDeleteCmd(e), listTemplateCmd(e), listStatsCmd(e))
}

// listFlags are the settings flags shared by `list create` and `list set`.
type listFlags struct {
	name, description, policy, archive, prefix, nonmember, bySubject, dmarc, verp, modPassword, subscribe, roster, notify, goodbye, newsgroup string
	maxSize                                                                                                                                   int64
	digestSize, digestSchedule, digestTZ, digestVolume, digestFormats, footer, footerFile, replyTo                                            string
	stdin                                                                                                                                     io.Reader // for --footer-file -
}

func (f *listFlags) register(fs *pflag.FlagSet, stdin io.Reader) {
	f.stdin = stdin
	fs.StringVar(&f.name, "name", "", "display name")
	fs.StringVar(&f.description, "description", "", "one-paragraph description")
	fs.StringVar(&f.policy, "post-policy", "", "who may post: open, members, moderated or announce (default members)")
	fs.StringVar(&f.archive, "archive", "", "who may read the archive: public or private (default public)")
	fs.StringVar(&f.prefix, "subject-prefix", "", `prefix added to subjects, e.g. "[dev]"`)
	fs.StringVar(&f.nonmember, "nonmember", "", "what happens to non-member posts on a members list: hold, reject or discard (default hold)")
	fs.Int64Var(&f.maxSize, "max-message-size", 0, "largest post in bytes for this list (0: the server's limit)")
	fs.StringVar(&f.modPassword, "moderator-password", "", "password owners put in an Approved: header to run commands by email at once ('-' reads it from stdin; '' removes it)")
	fs.StringVar(&f.notify, "notify-owners", "", "on (default): tell the owners whenever someone joins or leaves on their own; off: do not")
	fs.StringVar(&f.newsgroup, "newsgroup", "", "the list's newsgroup name over NNTP, e.g. org.example.lists.dev ('' or unset: derived from the address, domain reversed)")
	fs.StringVar(&f.goodbye, "goodbye", "", "on (default): tell members who are removed (by an owner, the CLI or the unsubscribe link); off: do not")
	fs.StringVar(&f.roster, "roster", "", "who may see the member list with the \"who\" command: owners (default), members or public")
	fs.StringVar(&f.subscribe, "subscribe", "", "confirm: a confirmed subscription takes effect (default); approve: an owner must approve it too")
	fs.StringVar(&f.verp, "verp", "", "on (default): a return path per copy, so each bounce names its member; off: copies to one domain share SMTP transactions")
	fs.StringVar(&f.dmarc, "dmarc", "", "rewrite From: to the list's address: policy (when the author's domain asks for it, the default), always or never")
	fs.StringVar(&f.bySubject, "subject-threading", "", "on: a \"Re:\" without References joins the latest thread with the same subject (default off)")
	fs.StringVar(&f.digestSize, "digest-size", "", "cut a digest issue when the posts waiting for it reach this size, e.g. 30KB (default); 0: only by schedule")
	fs.StringVar(&f.digestSchedule, "digest-schedule", "", `when digest issues are cut by the clock: "daily HH:MM" (default "daily 06:00"), "weekly DAY HH:MM" or "none"`)
	fs.StringVar(&f.digestTZ, "digest-tz", "", "time zone of the digest schedule, e.g. Europe/Berlin (default UTC)")
	fs.StringVar(&f.digestVolume, "digest-volume", "", "start a new digest volume yearly (default), monthly or never")
	fs.StringVar(&f.digestFormats, "digest-formats", "", "digest formats members may choose, of mime,plain,summary (default all three)")
	fs.StringVar(&f.footer, "footer", "", "text added to every copy and digest ('' none); may hold "+strings.Join(lists.FooterFields, " "))
	fs.StringVar(&f.footerFile, "footer-file", "", "read the footer from this file ('-': stdin)")
	fs.StringVar(&f.replyTo, "reply-to", "", "where replies go: author (default: Reply-To as the author set it), list, or an address")
}

// settings converts the flags that were given into lists.Settings.
func (f *listFlags) settings(fs *pflag.FlagSet) (lists.Settings, error) {
	var s lists.Settings
	if fs.Changed("name") {
		s.DisplayName = &f.name
	}
	if fs.Changed("description") {
		s.Description = &f.description
	}
	if fs.Changed("subject-prefix") {
		s.SubjectPrefix = &f.prefix
	}
	if fs.Changed("post-policy") {
		p, err := lists.ParsePostPolicy(f.policy)
		if err != nil {
			return s, err
		}
		s.PostPolicy = &p
	}
	if fs.Changed("nonmember") {
		a, err := lists.ParseAction(f.nonmember)
		if err != nil {
			return s, err
		}
		s.NonMember = &a
	}
	if fs.Changed("max-message-size") {
		s.MaxMessage = &f.maxSize
	}
	if fs.Changed("verp") {
		b, err := parseOnOff(f.verp)
		if err != nil {
			return s, err
		}
		s.VERP = &b
	}
	if fs.Changed("subscribe") {
		s.SubscribeBy = &f.subscribe
	}
	if fs.Changed("dmarc") {
		s.DMARC = &f.dmarc
	}
	if fs.Changed("roster") {
		s.Roster = &f.roster
	}
	if fs.Changed("notify-owners") {
		b, err := parseOnOff(f.notify)
		if err != nil {
			return s, err
		}
		s.NotifyMembership = &b
	}
	if fs.Changed("newsgroup") {
		s.Newsgroup = &f.newsgroup
	}
	if fs.Changed("goodbye") {
		b, err := parseOnOff(f.goodbye)
		if err != nil {
			return s, err
		}
		s.Goodbye = &b
	}
	if fs.Changed("subject-threading") {
		b, err := parseOnOff(f.bySubject)
		if err != nil {
			return s, err
		}
		s.SubjectThread = &b
	}
	if fs.Changed("archive") {
		a, err := lists.ParseArchive(f.archive)
		if err != nil {
			return s, err
		}
		s.Archive = &a
	}
	return s, f.deliverySettings(fs, &s)
}

// deliverySettings converts the digest, footer and Reply-To flags.
func (f *listFlags) deliverySettings(fs *pflag.FlagSet, s *lists.Settings) error {
	if fs.Changed("digest-size") {
		n, err := parseSize(f.digestSize)
		if err != nil {
			return err
		}
		s.DigestThreshold = &n
	}
	if fs.Changed("digest-schedule") {
		sc, err := lists.ParseSchedule(f.digestSchedule)
		if err != nil {
			return err
		}
		s.DigestSchedule = &sc
	}
	if fs.Changed("digest-tz") {
		s.DigestTZ = &f.digestTZ
	}
	if fs.Changed("digest-volume") {
		s.DigestVolume = &f.digestVolume
	}
	if fs.Changed("digest-formats") {
		formats := lists.ParseFormats(f.digestFormats)
		s.DigestFormats = &formats
	}
	if fs.Changed("footer") && fs.Changed("footer-file") {
		return usagef("give --footer or --footer-file, not both")
	}
	if fs.Changed("footer") {
		s.Footer = &f.footer
	}
	if fs.Changed("footer-file") {
		var b []byte
		var err error
		if f.footerFile == "-" {
			b, err = io.ReadAll(io.LimitReader(f.stdin, 64<<10))
		} else {
			b, err = os.ReadFile(f.footerFile)
		}
		if err != nil {
			return usagef("--footer-file: %v", err)
		}
		text := strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
		s.Footer = &text
	}
	if fs.Changed("reply-to") {
		s.ReplyTo = &f.replyTo
	}
	return nil
}

// parseSize reads a byte count with an optional unit: 30000, 30KB, 2MB
// (KB and MB are 1024 and 1024²).
func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KB", 1 << 10}, {"K", 1 << 10}, {"MB", 1 << 20}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, usagef("size %q: want a number of bytes, e.g. 30KB or 2MB", v)
	}
	return n * mult, nil
}

func listCreateCmd(e *env) *cobra.Command {
	var f listFlags
	var owners []string
	c := &cobra.Command{
		Use:   "create ADDRESS",
		Short: "Create a list",
		Example: `  parley list create dev@lists.example.org --owner alice@example.org \
    --post-policy members --archive public --subject-prefix "[dev]"`,
		Args: nArgs(1, 1, "one list ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			addr, err := mailaddr.ParseList(args[0])
			if err != nil {
				return err
			}
			s, err := f.settings(c.Flags())
			if err != nil {
				return err
			}
			var ms []members.New
			for _, o := range owners {
				m, err := members.ParseNew(o, members.RoleOwner, members.DeliveryRegular)
				if err != nil {
					return fmt.Errorf("--owner: %w", err)
				}
				ms = append(ms, m)
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				err := db.InTx(c.Context(), d.DB, func(tx *sqlx.Tx) error {
					l, err := lists.Create(c.Context(), tx, addr, s, time.Now())
					if err != nil {
						return err
					}
					_, err = members.Add(c.Context(), tx, l.ID, ms)
					return err
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(e.io.Stdout, "created list %s\n", addr)
				warnOpenPrivate(e, s)
				return nil
			})
		},
	}
	f.register(c.Flags(), e.io.Stdin)
	c.Flags().StringArrayVar(&owners, "owner", nil, "owner address (repeatable); owners are also members")
	return c
}

func listLsCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls",
		Short: "List all lists",
		Args:  nArgs(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return e.withDB(c.Context(), func(d *app.Database) error {
				ls, err := lists.AllCounted(c.Context(), d)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.io.Stdout, nonNil(ls))
				}
				tw := tabwriter.NewWriter(e.io.Stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ADDRESS\tPOLICY\tARCHIVE\tMEMBERS\tPOSTS\tNAME")
				for _, l := range ls {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", l.Address, l.PostPolicy, l.Archive, l.Members, l.NextArticle-1, l.DisplayName)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func listShowCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show ADDRESS",
		Short: "Show one list's settings",
		Args:  nArgs(1, 1, "one list ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withDB(c.Context(), func(d *app.Database) error {
				l, err := lists.Show(c.Context(), d, args[0])
				if err != nil {
					return err
				}
				x, err := staffOf(c.Context(), d, l)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.io.Stdout, struct {
						lists.List
						staff
					}{l, x})
				}
				return writeList(e.io.Stdout, l, &x)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// staff is who runs a list, for list show.
type staff struct {
	Owners            []string `json:"owners"`
	Moderators        []string `json:"moderators"`
	ModeratorPassword bool     `json:"moderator_password_set"`
}

func staffOf(ctx context.Context, q db.Querier, l lists.List) (staff, error) {
	var x staff
	for role, into := range map[members.Role]*[]string{members.RoleOwner: &x.Owners, members.RoleModerator: &x.Moderators} {
		ms, err := members.All(ctx, q, l.ID, members.Filter{Role: role})
		if err != nil {
			return x, err
		}
		*into = []string{}
		for _, m := range ms {
			*into = append(*into, m.Address)
		}
	}
	hash, err := lists.ModeratorPassword(ctx, q, l.ID)
	x.ModeratorPassword = hash != ""
	return x, err
}

// writeList prints a list's settings, and who runs it when x is given.
func writeList(w io.Writer, l lists.List, x *staff) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	rows := listRows(l)
	if x != nil {
		rows = append(rows, [][2]string{
			{"owners", orDash(strings.Join(x.Owners, ", "))},
			{"moderators", orDash(strings.Join(x.Moderators, ", "))},
			{"moderator password", map[bool]string{true: "set (it alone authorises owner commands by mail)", false: "not set"}[x.ModeratorPassword]},
		}...)
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// writeChanges prints the settings that differ between before and after.
func writeChanges(w io.Writer, before, after lists.List) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	old, n := listRows(before), 0
	for i, r := range listRows(after) {
		if r[1] != old[i][1] {
			fmt.Fprintf(tw, "%s:\t%s\t→ %s\n", r[0], orDash(old[i][1]), orDash(r[1]))
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(tw, "%s: nothing changed (the settings given were already so)\n", after.Address)
	}
	return tw.Flush()
}

// listRows are a list's settings as list show prints them.
func listRows(l lists.List) [][2]string {
	return [][2]string{
		{"address", l.Address},
		{"name", l.DisplayName},
		{"description", strings.ReplaceAll(l.Description, "\n", " ")},
		{"post policy", string(l.PostPolicy)},
		{"archive", string(l.Archive)},
		{"subject prefix", l.SubjectPrefix},
		{"non-member posts", string(l.NonMember)},
		{"max message size", sizeOr(l.MaxMessage)},
		{"subject threading", onOff(l.SubjectThread)},
		{"dmarc mitigation", l.DMARC},
		{"verp", onOff(l.VERP)},
		{"subscriptions", l.SubscribeBy},
		{"roster", l.Roster},
		{"notify owners", onOff(l.NotifyMembership)},
		{"goodbye", onOff(l.Goodbye)},
		{"newsgroup", orDash(l.Newsgroup)},
		{"reply-to", l.ReplyTo},
		{"footer", strings.ReplaceAll(l.Footer, "\n", `\n`)},
		{"digest size", digestSize(l.Digest.Threshold)},
		{"digest schedule", l.Digest.Schedule.String() + " " + l.Digest.TZ},
		{"digest volume", l.Digest.Volume},
		{"digest formats", strings.Join(l.Digest.Formats, ",")},
		{"members", fmt.Sprint(l.Members)},
		{"posts", fmt.Sprint(l.NextArticle - 1)},
		{"uidvalidity", fmt.Sprint(l.UIDValidity)},
		{"created", l.CreatedAt.UTC().Format(time.RFC3339)},
	}
}

func listSetCmd(e *env) *cobra.Command {
	var f listFlags
	c := &cobra.Command{
		Use:     "set ADDRESS",
		Short:   "Change a list's settings",
		Example: `  parley list set dev@lists.example.org --post-policy moderated --archive private`,
		Args:    nArgs(1, 1, "one list ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := f.settings(c.Flags())
			if err != nil {
				return err
			}
			setPassword := c.Flags().Changed("moderator-password")
			if s == (lists.Settings{}) && !setPassword {
				return usagef("%s: nothing to change (see --help for the settings)", c.CommandPath())
			}
			hash, err := e.passwordHash(setPassword, f.modPassword)
			if err != nil {
				return err
			}
			return e.withDB(c.Context(), func(d *app.Database) error {
				before, err := lists.Get(c.Context(), d, args[0])
				if err != nil {
					return err
				}
				l, err := lists.Update(c.Context(), d, args[0], s)
				if err != nil {
					return err
				}
				if setPassword {
					if err := lists.SetModeratorPassword(c.Context(), d, l.ID, hash); err != nil {
						return err
					}
				}
				warnOpenPrivate(e, s)
				if s.Archive != nil && *s.Archive == lists.ArchivePrivate && s.SubscribeBy == nil && l.SubscribeBy == "approve" {
					fmt.Fprintln(e.io.Stderr, "note: subscriptions to the private list now wait for an owner's approval (--subscribe confirm undoes it)")
				}
				if setPassword {
					fmt.Fprintf(e.io.Stdout, "moderator password: %s\n", map[bool]string{true: "set", false: "removed"}[hash != ""])
				}
				return writeChanges(e.io.Stdout, before, l)
			})
		},
	}
	f.register(c.Flags(), e.io.Stdin)
	noDefaults(c.Flags())
	return c
}

// creationDefault is where a flag's help names the value a new list gets.
var creationDefault = regexp.MustCompile(`\s*\(default[^)]*\)|, the default`)

// noDefaults drops the creation defaults from the flags' help: list set
// changes only what is given, whatever the default of a new list is.
func noDefaults(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) { f.Usage = creationDefault.ReplaceAllString(f.Usage, "") })
}

// passwordHash hashes the --moderator-password value ("-": read a line
// from stdin, so it stays out of the process list; "": remove it).
func (e *env) passwordHash(set bool, value string) (string, error) {
	if !set || value == "" {
		return "", nil
	}
	if value == "-" {
		line, err := bufio.NewReader(e.io.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", usagef("--moderator-password -: no password on stdin")
		}
		value = strings.TrimRight(line, "\r\n")
	}
	return commands.HashPassword(value)
}

func listDeleteCmd(e *env) *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "delete ADDRESS",
		Short: "Delete a list with its members (and, later, its archive)",
		Long: `Delete a list and everything that belongs to it. A list that has members or
archived posts is deleted only with --yes.`,
		Args: nArgs(1, 1, "one list ADDRESS"),
		RunE: func(c *cobra.Command, args []string) error {
			return e.withDB(c.Context(), func(d *app.Database) error {
				return db.InTx(c.Context(), d.DB, func(tx *sqlx.Tx) error {
					l, err := lists.Show(c.Context(), tx, args[0])
					if err != nil {
						return err
					}
					if !yes && (l.Members > 0 || l.NextArticle > 1) {
						return usagef("list %s has %d members and %d posts: add --yes to delete it and all of them",
							l.Address, l.Members, l.NextArticle-1)
					}
					if err := lists.Delete(c.Context(), tx, l.Address); err != nil {
						return err
					}
					fmt.Fprintf(e.io.Stdout, "deleted list %s\n", l.Address)
					return nil
				})
			})
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "delete even when the list has members or posts")
	return c
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// nonNil makes an empty result print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func digestSize(n int64) string {
	if n == 0 {
		return "off (by schedule only)"
	}
	return fmt.Sprintf("%d bytes", n)
}

func sizeOr(n int64) string {
	if n == 0 {
		return "server limit"
	}
	return fmt.Sprintf("%d bytes", n)
}

// warnOpenPrivate says what an explicit --subscribe confirm on a private
// list means: anyone who learns its address can join and read it.
func warnOpenPrivate(e *env, s lists.Settings) {
	if s.Archive != nil && *s.Archive == lists.ArchivePrivate && s.SubscribeBy != nil && *s.SubscribeBy == "confirm" {
		fmt.Fprintln(e.io.Stderr, "warning: the archive is private but anyone who learns the list's address can join "+
			"(confirming by mail) and then read it; --subscribe approve makes the owners approve every join")
	}
}
