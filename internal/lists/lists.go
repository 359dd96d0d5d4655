// Package lists owns mailing lists and their domains: creating, reading,
// changing and deleting list records and their per-list settings.
//
// A list's identity (its address, UIDVALIDITY and article counter) never
// changes after creation; everything else is a setting. It owns the
// domains and lists tables, except the article counter (next_article),
// which only the archive advances (see internal/archive); readers of the
// archive get it here (Numbering).
package lists

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/mailaddr"
)

// Errors callers branch on (with errors.Is); they arrive as *errs.Invalid.
var (
	ErrNotFound = errors.New("no such list")
	ErrExists   = errors.New("list exists")
)

// PostPolicy decides who may post.
type PostPolicy string

// Posting policies.
const (
	PostOpen      PostPolicy = "open"      // anyone
	PostMembers   PostPolicy = "members"   // members; others per the non-member rule
	PostModerated PostPolicy = "moderated" // every post is held
	PostAnnounce  PostPolicy = "announce"  // owners and moderators only
)

// ParsePostPolicy validates a policy name.
func ParsePostPolicy(s string) (PostPolicy, error) {
	switch p := PostPolicy(strings.ToLower(strings.TrimSpace(s))); p {
	case PostOpen, PostMembers, PostModerated, PostAnnounce:
		return p, nil
	}
	return "", errs.Invalidf("unknown post policy %q (want open, members, moderated or announce)", s)
}

// Action is what happens to a post from a non-member of a members-only
// list.
type Action string

// Non-member actions.
const (
	ActionHold    Action = "hold"    // keep for a moderator
	ActionReject  Action = "reject"  // refuse at SMTP time
	ActionDiscard Action = "discard" // accept, record, never distribute
)

// ParseAction validates a non-member action.
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case ActionHold, ActionReject, ActionDiscard:
		return a, nil
	}
	return "", errs.Invalidf("unknown non-member action %q (want hold, reject or discard)", s)
}

// Archive is who may read the list's archive.
type Archive string

// Archive visibilities.
const (
	ArchivePublic  Archive = "public"  // anyone, anonymously
	ArchivePrivate Archive = "private" // members only
)

// ParseArchive validates an archive visibility.
func ParseArchive(s string) (Archive, error) {
	switch a := Archive(strings.ToLower(strings.TrimSpace(s))); a {
	case ArchivePublic, ArchivePrivate:
		return a, nil
	}
	return "", errs.Invalidf("unknown archive visibility %q (want public or private)", s)
}

// List is one mailing list.
type List struct {
	ID            int64      `db:"id" json:"-"`
	Address       string     `db:"address" json:"address"`
	LocalPart     string     `db:"local_part" json:"-"`
	Domain        string     `db:"domain" json:"domain"`
	DisplayName   string     `db:"display_name" json:"display_name"`
	Description   string     `db:"description" json:"description"`
	PostPolicy    PostPolicy `db:"post_policy" json:"post_policy"`
	Archive       Archive    `db:"archive" json:"archive"`
	SubjectPrefix string     `db:"subject_prefix" json:"subject_prefix"`
	NonMember     Action     `db:"nonmember_action" json:"nonmember_action"`
	MaxMessage    int64      `db:"max_message_bytes" json:"max_message_bytes"`
	SubjectThread bool       `db:"subject_threading" json:"subject_threading"`
	DMARC         string     `db:"dmarc_mitigation" json:"dmarc_mitigation"`
	VERP          bool       `db:"verp" json:"verp"`
	SubscribeBy   string     `db:"subscribe_policy" json:"subscribe_policy"`
	Roster        string     `db:"roster" json:"roster"` // who may see the members: owners, members or public
	// NotifyMembership tells the owners of every join and leave a member
	// makes on their own.
	NotifyMembership bool `db:"notify_membership" json:"notify_membership"`
	// Goodbye tells a member who is removed (by an owner, the CLI or a
	// one-click unsubscribe) that they are off the list.
	Goodbye bool `db:"goodbye" json:"goodbye"`
	// Newsgroup is the list's newsgroup name when it is not the one
	// derived from its address ("" derived; internal/nntpd).
	Newsgroup string `db:"newsgroup" json:"newsgroup,omitempty"`
	Digest    Digest `db:"digest" json:"digest"`
	// Footer is added to every copy and digest ('' none; see
	// internal/deliver's footer.go).
	Footer string `db:"footer" json:"footer"`
	// ReplyTo is where replies go: ReplyToAuthor, ReplyToList or an
	// address.
	ReplyTo     string    `db:"reply_to" json:"reply_to"`
	UIDValidity int64     `db:"uidvalidity" json:"uidvalidity"`
	NextArticle int64     `db:"next_article" json:"next_article"`
	Members     int64     `db:"members" json:"members"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
	UpdatedAt   time.Time `db:"updated_at" json:"updated_at"`
}

// Settings are the changeable parts of a list. A nil field is left as it is
// (or at its default on Create).
type Settings struct {
	DisplayName   *string
	Description   *string
	PostPolicy    *PostPolicy
	Archive       *Archive
	SubjectPrefix *string
	NonMember     *Action
	MaxMessage    *int64
	SubjectThread *bool
	DMARC         *string // policy, always or never
	VERP          *bool
	SubscribeBy   *string // confirm or approve
	Roster        *string // owners, members or public
	// NotifyMembership: tell the owners of joins and leaves.
	NotifyMembership *bool
	Goodbye          *bool     // tell removed members
	Newsgroup        *string   // "" for the name derived from the address
	DigestThreshold  *int64    // bytes; 0: no size trigger
	DigestSchedule   *Schedule // see ParseSchedule
	DigestTZ         *string   // an IANA time zone name
	DigestVolume     *string   // yearly, monthly or never
	DigestFormats    *[]string // of mime, plain, summary
	Footer           *string   // a template (FooterFields)
	ReplyTo          *string   // author, list or an address
}

// columns are the settings that are set, by column, for Create and
// Update: a new setting is a field, a line here and a column.
func (s Settings) columns() []column {
	var cs []column
	col(&cs, "display_name", s.DisplayName)
	col(&cs, "description", s.Description)
	col(&cs, "post_policy", s.PostPolicy)
	col(&cs, "archive", s.Archive)
	col(&cs, "subject_prefix", s.SubjectPrefix)
	col(&cs, "nonmember_action", s.NonMember)
	col(&cs, "max_message_bytes", s.MaxMessage)
	col(&cs, "subject_threading", s.SubjectThread)
	col(&cs, "dmarc_mitigation", s.DMARC)
	col(&cs, "verp", s.VERP)
	col(&cs, "subscribe_policy", s.SubscribeBy)
	col(&cs, "roster", s.Roster)
	col(&cs, "notify_membership", s.NotifyMembership)
	col(&cs, "goodbye", s.Goodbye)
	col(&cs, "newsgroup", s.Newsgroup)
	col(&cs, "digest_threshold", s.DigestThreshold)
	if s.DigestSchedule != nil {
		cs = append(cs, column{"digest_schedule", s.DigestSchedule.String()})
	}
	col(&cs, "digest_tz", s.DigestTZ)
	col(&cs, "digest_volume", s.DigestVolume)
	if s.DigestFormats != nil {
		cs = append(cs, column{"digest_formats", pq.StringArray(*s.DigestFormats)})
	}
	col(&cs, "footer", s.Footer)
	col(&cs, "reply_to", s.ReplyTo)
	return cs
}

// column is one setting's column and new value.
type column struct {
	name  string
	value any
}

func col[T any](cs *[]column, name string, v *T) {
	if v != nil {
		*cs = append(*cs, column{name, *v})
	}
}

// validate checks free-text settings: they end up in mail headers, so no
// line breaks or control characters, and bounded length.
func (s Settings) validate() error {
	check := func(name string, v *string, max int, multiline bool) error {
		if v == nil {
			return nil
		}
		if !utf8.ValidString(*v) || utf8.RuneCountInString(*v) > max {
			return errs.Invalidf("%s: must be valid UTF-8 of at most %d characters", name, max)
		}
		for _, r := range *v {
			if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
				return errs.Invalidf("%s: control characters are not allowed", name)
			}
		}
		return nil
	}
	if s.DMARC != nil && *s.DMARC != "policy" && *s.DMARC != "always" && *s.DMARC != "never" {
		return errs.Invalidf("dmarc mitigation %q: want policy, always or never", *s.DMARC)
	}
	if s.SubscribeBy != nil && *s.SubscribeBy != "confirm" && *s.SubscribeBy != "approve" {
		return errs.Invalidf("subscribe policy %q: want confirm or approve", *s.SubscribeBy)
	}
	if s.Roster != nil && *s.Roster != "owners" && *s.Roster != "members" && *s.Roster != "public" {
		return errs.Invalidf("roster %q: want owners, members or public", *s.Roster)
	}
	if s.MaxMessage != nil && *s.MaxMessage < 0 {
		return errs.Invalidf("max message size: must not be negative")
	}
	return errors.Join(
		check("display name", s.DisplayName, 200, false),
		check("description", s.Description, 4000, true),
		check("subject prefix", s.SubjectPrefix, 64, false),
		check("footer", s.Footer, 2000, true),
		checkNewsgroup(s.Newsgroup),
		s.validateDelivery(),
	)
}

// listCols are the columns of List; the member count is filled only where
// it is shown (it costs a count over the list's members).
const listCols = `l.id, l.address, l.local_part, d.name AS domain, l.display_name, l.description,
       l.post_policy, l.archive, l.subject_prefix, l.nonmember_action, l.max_message_bytes,
       l.subject_threading, l.dmarc_mitigation, l.verp, l.subscribe_policy, l.roster, l.notify_membership, l.goodbye, l.newsgroup,
       l.digest_threshold AS "digest.threshold", l.digest_schedule AS "digest.schedule",
       l.digest_tz AS "digest.tz", l.digest_volume AS "digest.volume", l.digest_formats AS "digest.formats",
       l.footer, l.reply_to, l.uidvalidity, l.next_article, l.created_at, l.updated_at`

const (
	selectList       = `SELECT ` + listCols + `, 0 AS members FROM lists l JOIN domains d ON d.id = l.domain_id`
	selectListCounts = `SELECT ` + listCols + `,
       (SELECT count(*) FROM members m WHERE m.list_id = l.id) AS members
  FROM lists l JOIN domains d ON d.id = l.domain_id`
)

// Create makes a list (and its domain, if new). now fixes UIDVALIDITY. A
// private list's subscriptions wait for an owner's approval unless the
// settings say otherwise: anyone who learns its address could otherwise
// join and read its archive.
func Create(ctx context.Context, q db.Querier, addr mailaddr.Address, s Settings, now time.Time) (List, error) {
	if err := s.validate(); err != nil {
		return List{}, err
	}
	if s.Archive != nil && *s.Archive == ArchivePrivate && s.SubscribeBy == nil {
		approve := "approve"
		s.SubscribeBy = &approve
	}
	var domainID int64
	err := q.QueryRowxContext(ctx, `
		WITH ins AS (INSERT INTO domains (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id)
		SELECT id FROM ins UNION ALL SELECT id FROM domains WHERE name = $1 LIMIT 1`, addr.Domain).Scan(&domainID)
	if err != nil {
		return List{}, fmt.Errorf("create list: %w", err)
	}
	names := []string{"domain_id", "local_part", "address", "uidvalidity", "created_at", "updated_at"}
	args := []any{domainID, addr.Local, addr.String(), uidValidity(now), now, now}
	for _, c := range s.columns() {
		names, args = append(names, c.name), append(args, c.value)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO lists (`+strings.Join(names, ", ")+`) VALUES (`+placeholders(1, len(args))+`)`, args...)
	if _, dup := db.IsUniqueViolation(err); dup {
		return List{}, errs.Kindf(ErrExists, "list %s already exists", addr)
	}
	if err != nil {
		return List{}, fmt.Errorf("create list: %w", err)
	}
	return Show(ctx, q, addr.String())
}

// placeholders returns "$from, …, $(from+n-1)".
func placeholders(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(ps, ", ")
}

// uidValidity derives a list's IMAP UIDVALIDITY from its creation time, as
// public-inbox does: positive, 32-bit, and different for a list deleted and
// re-created later.
func uidValidity(now time.Time) int64 {
	v := now.Unix() & 0xffffffff
	if v == 0 {
		v = 1
	}
	return v
}

// Get returns the list with the given address (Members is not counted).
func Get(ctx context.Context, q db.Querier, address string) (List, error) {
	return get(ctx, q, selectList, address)
}

// Show returns the list with the given address and its member count.
func Show(ctx context.Context, q db.Querier, address string) (List, error) {
	return get(ctx, q, selectListCounts, address)
}

func get(ctx context.Context, q db.Querier, query, address string) (List, error) {
	a, err := mailaddr.ParseList(address)
	if err != nil {
		return List{}, err
	}
	var l List
	err = q.GetContext(ctx, &l, query+` WHERE l.address = $1`, a.String())
	if db.IsNoRows(err) {
		return List{}, errs.Kindf(ErrNotFound, "no list %s", a)
	}
	if err != nil {
		return List{}, fmt.Errorf("get list: %w", err)
	}
	return l, nil
}

// GetByID returns the list with the given id.
func GetByID(ctx context.Context, q db.Querier, id int64) (List, error) {
	var l List
	err := q.GetContext(ctx, &l, selectList+` WHERE l.id = $1`, id)
	if db.IsNoRows(err) {
		return List{}, errs.Kindf(ErrNotFound, "no list with id %d", id)
	}
	if err != nil {
		return List{}, fmt.Errorf("get list: %w", err)
	}
	return l, nil
}

// All returns every list, ordered by domain and name, without member
// counts (Members is 0): what the readers (web, NNTP) look up on every
// request needs no count over each list's members.
func All(ctx context.Context, q db.Querier) ([]List, error) {
	return all(ctx, q, selectList)
}

// Named returns the lists among addresses, and the one whose own
// newsgroup name is newsgroup: the few a news reader's GROUP may mean,
// found by index however many lists there are.
func Named(ctx context.Context, q db.Querier, addresses []string, newsgroup string) ([]List, error) {
	var ls []List
	err := q.SelectContext(ctx, &ls, selectList+` WHERE l.address = ANY ($1) OR (l.newsgroup = $2 AND l.newsgroup <> '')`,
		pq.StringArray(addresses), newsgroup)
	if err != nil {
		return nil, fmt.Errorf("lists named: %w", err)
	}
	return ls, nil
}

// AllCounted is All with each list's member count, for showing lists.
func AllCounted(ctx context.Context, q db.Querier) ([]List, error) {
	return all(ctx, q, selectListCounts)
}

func all(ctx context.Context, q db.Querier, query string) ([]List, error) {
	var ls []List
	if err := q.SelectContext(ctx, &ls, query+` ORDER BY d.name, l.local_part`); err != nil {
		return nil, fmt.Errorf("list lists: %w", err)
	}
	return ls, nil
}

// Count returns the number of lists.
func Count(ctx context.Context, q db.Querier) (int64, error) {
	var n int64
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM lists`)
	return n, err
}

// Update changes the settings that are set in s. A list made private
// whose subscriptions took effect on confirmation alone now waits for an
// owner's approval too, unless s says otherwise (as Create does).
func Update(ctx context.Context, q db.Querier, address string, s Settings) (List, error) {
	if err := s.validate(); err != nil {
		return List{}, err
	}
	l, err := Get(ctx, q, address)
	if err != nil {
		return List{}, err
	}
	if s.Archive != nil && *s.Archive == ArchivePrivate && l.Archive != ArchivePrivate && s.SubscribeBy == nil && l.SubscribeBy == "confirm" {
		approve := "approve"
		s.SubscribeBy = &approve
	}
	sets := []string{"updated_at = now()"}
	args := []any{l.ID}
	for _, c := range s.columns() {
		args = append(args, c.value)
		sets = append(sets, fmt.Sprintf("%s = $%d", c.name, len(args)))
	}
	_, err = q.ExecContext(ctx, `UPDATE lists SET `+strings.Join(sets, ", ")+` WHERE id = $1`, args...)
	if err != nil {
		return List{}, fmt.Errorf("update list: %w", err)
	}
	return Show(ctx, q, address)
}

// Delete removes a list and everything that belongs to it.
func Delete(ctx context.Context, q db.Querier, address string) error {
	l, err := Get(ctx, q, address)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM lists WHERE id = $1`, l.ID); err != nil {
		return fmt.Errorf("delete list: %w", err)
	}
	return nil
}

// DomainServed reports whether parley serves domain (some list is on it).
func DomainServed(ctx context.Context, q db.Querier, domain string) (bool, error) {
	var served bool
	err := q.GetContext(ctx, &served, `SELECT EXISTS (SELECT 1 FROM domains WHERE name = $1)`, domain)
	return served, err
}

// PublicOn returns the lists on domain whose archive is public, by
// address (what the "lists" command shows a stranger).
func PublicOn(ctx context.Context, q db.Querier, domain string) ([]List, error) {
	var ls []List
	err := q.SelectContext(ctx, &ls, selectList+` WHERE d.name = $1 AND l.archive = 'public' ORDER BY l.address`, domain)
	return ls, err
}

// ModeratorPassword returns the bcrypt hash of the list's moderator
// password ("" when none is set). It is kept out of List so that no view
// of a list can show it.
func ModeratorPassword(ctx context.Context, q db.Querier, id int64) (string, error) {
	var hash string
	err := q.GetContext(ctx, &hash, `SELECT moderator_password FROM lists WHERE id = $1`, id)
	return hash, err
}

// SetModeratorPassword stores the bcrypt hash of a new moderator password
// ("" removes it).
func SetModeratorPassword(ctx context.Context, q db.Querier, id int64, hash string) error {
	_, err := q.ExecContext(ctx, `UPDATE lists SET moderator_password = $2, updated_at = now() WHERE id = $1`, id, hash)
	return err
}

// Numbering is what a reader of a list's archive (IMAP) needs of the
// list: its address, its UIDVALIDITY and the number its next post will
// get.
type Numbering struct {
	ID          int64  `db:"id"`
	Address     string `db:"address"`
	UIDValidity int64  `db:"uidvalidity"`
	NextArticle int64  `db:"next_article"`
}

// Readable returns the lists whose archive is public, and the private
// ones given, by address.
func Readable(ctx context.Context, q db.Querier, private []int64) ([]Numbering, error) {
	var ns []Numbering
	err := q.SelectContext(ctx, &ns, `SELECT id, address, uidvalidity, next_article FROM lists
		 WHERE archive = 'public' OR id = ANY ($1::bigint[]) ORDER BY address`, pq.Int64Array(private))
	return ns, err
}

// ReadableByAddress returns one list of Readable's by its address
// (compared in lower case); a list that exists but may not be read is
// ErrNotFound, like one that does not exist.
func ReadableByAddress(ctx context.Context, q db.Querier, address string, private []int64) (Numbering, error) {
	var n Numbering
	err := q.GetContext(ctx, &n, `SELECT id, address, uidvalidity, next_article FROM lists
		 WHERE address = lower($1) AND (archive = 'public' OR id = ANY ($2::bigint[]))`, address, pq.Int64Array(private))
	if db.IsNoRows(err) {
		return n, errs.Kindf(ErrNotFound, "no list %s", address)
	}
	return n, err
}

// NextArticle returns the number the list's next post will get: every
// number below it is a committed post (numbers follow commit order).
func NextArticle(ctx context.Context, q db.Querier, id int64) (int64, error) {
	var next int64
	err := q.GetContext(ctx, &next, `SELECT next_article FROM lists WHERE id = $1`, id)
	return next, err
}

// Answers reports whether parley itself answers for the address: a list
// or one of its service addresses (-request, -owner, -bounces+…), or the
// postmaster or mailer-daemon of a domain it serves. Such an address is
// never subscribed, invited or written to on anyone's say-so: mail to it
// would come back to parley (a loop, or a list subscribed to a list).
func Answers(ctx context.Context, q db.Querier, a mailaddr.Address) (bool, error) {
	own, err := Own(ctx, q, []mailaddr.Address{a})
	return len(own) > 0, err
}

// Own returns those of addrs that parley answers for (see Answers), in
// two queries however many there are.
func Own(ctx context.Context, q db.Querier, addrs []mailaddr.Address) ([]mailaddr.Address, error) {
	var domains []string
	if err := q.SelectContext(ctx, &domains, `SELECT name FROM domains`); err != nil {
		return nil, err
	}
	served := map[string]bool{}
	for _, d := range domains {
		served[d] = true
	}
	var own []mailaddr.Address
	var cands []string // list addresses to look up
	var candOf []mailaddr.Address
	for _, a := range addrs {
		if !served[a.Domain] {
			continue
		}
		local := strings.ToLower(a.Local)
		if local == "postmaster" || mailaddr.IsMailerDaemon(local) {
			own = append(own, a)
			continue
		}
		if route, ok := mailaddr.Classify(a.Local); ok {
			cands = append(cands, route.List+"@"+a.Domain)
			candOf = append(candOf, a)
		}
	}
	if len(cands) == 0 {
		return own, nil
	}
	var existing []string
	if err := q.SelectContext(ctx, &existing, `SELECT address FROM lists WHERE address = ANY ($1::text[])`, pq.StringArray(cands)); err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, e := range existing {
		exists[e] = true
	}
	for i, c := range cands {
		if exists[c] {
			own = append(own, candOf[i])
		}
	}
	return own, nil
}

// newsgroupName is what a newsgroup name may be: lower-case components
// of letters, digits, "+", "-" and "_", at least two, joined by dots.
var newsgroupName = regexp.MustCompile(`^[a-z0-9][a-z0-9+_-]*(\.[a-z0-9][a-z0-9+_-]*)+$`)

func checkNewsgroup(g *string) error {
	if g == nil || *g == "" || newsgroupName.MatchString(*g) {
		return nil
	}
	return errs.Invalidf("newsgroup %q: want lower-case names joined by dots, e.g. org.example.lists.dev", *g)
}
