// Package members owns subscriptions: who is on which list, in which role,
// with which delivery mode and status.
//
// An address is stored twice: as the person gave it (for display and for
// mail we send them) and normalised (mailaddr.Address.String: lower case,
// local part too) for every comparison, so Alice@Example.ORG and
// alice@example.org are one member.
//
// It owns the members table, member_events (joins and leaves, for the
// owners' figures), sub_requests (subscriptions waiting for an owner),
// and digest_spans: which articles each member
// takes in digests, kept by the SQL function member_delivery whenever a
// delivery mode changes. Three statements elsewhere read them, read-only,
// because they must not ferry every member through Go: outqueue's Expand
// writes one copy per member of a post or a digest issue in a single
// INSERT … SELECT (a fan-out to 10,000 members is one statement), and
// lists counts a list's members where a list is shown. internal/digest
// reads digest_spans to know where an issue starts, and drops the spans
// no issue needs any more (ForgetSpans).
package members

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
	"golang.org/x/crypto/bcrypt"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
)

// Errors callers branch on (with errors.Is); they arrive as *errs.Invalid.
var (
	ErrNotFound = errors.New("not a member")
	ErrExists   = errors.New("already a member")
	// ErrOwnAddress: the address is one parley answers for itself (a list
	// or service address); subscribing it would loop mail back.
	ErrOwnAddress = errors.New("an address of this server")
)

// Role is what a member may do beyond reading and posting.
type Role string

// Roles.
const (
	RoleMember    Role = "member"
	RoleModerator Role = "moderator"
	RoleOwner     Role = "owner"
)

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case RoleMember, RoleModerator, RoleOwner:
		return r, nil
	}
	return "", errs.Invalidf("unknown role %q (want member, moderator or owner)", s)
}

// Delivery is how a member receives posts.
type Delivery string

// Delivery modes.
const (
	DeliveryRegular     Delivery = "regular"      // every post as it arrives
	DeliveryDigest      Delivery = "digest"       // MIME digests (RFC 2046 multipart/digest)
	DeliveryDigestPlain Delivery = "digest-plain" // plain-text digests (RFC 1153)
	DeliverySummary     Delivery = "summary"      // one line per thread, with links
	DeliveryNoMail      Delivery = "nomail"       // nothing (reads the archive)
)

// DeliveryModes names every mode, for messages that list them.
const DeliveryModes = "regular, digest, digest-plain, summary or nomail"

// ParseDelivery validates a delivery mode.
func ParseDelivery(s string) (Delivery, error) {
	switch d := Delivery(strings.ToLower(strings.TrimSpace(s))); d {
	case DeliveryRegular, DeliveryDigest, DeliveryDigestPlain, DeliverySummary, DeliveryNoMail:
		return d, nil
	}
	return "", errs.Invalidf("unknown delivery mode %q (want %s)", s, DeliveryModes)
}

// DigestFormat is the digest format of a mode (the name lists and
// digests use: mime, plain or summary), "" for a mode that is not a
// digest.
func (d Delivery) DigestFormat() string {
	switch d {
	case DeliveryDigest:
		return "mime"
	case DeliveryDigestPlain:
		return "plain"
	case DeliverySummary:
		return "summary"
	}
	return ""
}

// checkDigest refuses a digest format the list does not offer.
func checkDigest(ctx context.Context, q db.Querier, listID int64, d Delivery) error {
	f := d.DigestFormat()
	if f == "" {
		return nil
	}
	var offered pq.StringArray
	if err := q.GetContext(ctx, &offered, `SELECT digest_formats FROM lists WHERE id = $1`, listID); err != nil {
		return fmt.Errorf("digest formats: %w", err)
	}
	if !slices.Contains(offered, f) {
		return errs.Invalidf("this list does not offer %s delivery (it offers %s)", d, offeredModes(offered))
	}
	return nil
}

// offeredModes names the digest modes of a list's formats.
func offeredModes(formats []string) string {
	names := map[string]string{"mime": "digest", "plain": "digest-plain", "summary": "summary"}
	var out []string
	for _, f := range formats {
		out = append(out, names[f])
	}
	return "regular, " + strings.Join(out, ", ") + " and nomail"
}

// Status says whether mail is sent to the member at all.
type Status string

// Statuses.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled" // e.g. by bounces; no mail until re-enabled
)

// ParseStatus validates a status.
func ParseStatus(s string) (Status, error) {
	switch st := Status(strings.ToLower(strings.TrimSpace(s))); st {
	case StatusActive, StatusDisabled:
		return st, nil
	}
	return "", errs.Invalidf("unknown status %q (want active or disabled)", s)
}

// Member is one subscription.
type Member struct {
	ID          int64    `db:"id" json:"-"`
	ListID      int64    `db:"list_id" json:"-"`
	Address     string   `db:"address" json:"address"`
	AddressNorm string   `db:"address_norm" json:"-"`
	DisplayName string   `db:"display_name" json:"display_name,omitempty"`
	Role        Role     `db:"role" json:"role"`
	Delivery    Delivery `db:"delivery" json:"delivery"`
	Status      Status   `db:"status" json:"status"`
	Moderated   bool     `db:"moderated" json:"moderated"`
	SelfCopy    bool     `db:"self_copy" json:"self_copy"`
	// DisabledReason says why delivery was stopped (bounces, …).
	DisabledReason string    `db:"disabled_reason" json:"disabled_reason,omitempty"`
	JoinedAt       time.Time `db:"joined_at" json:"joined_at"`
	UpdatedAt      time.Time `db:"updated_at" json:"updated_at"`
}

// New describes a member to add.
type New struct {
	Given    string // the address as the person wrote it
	Name     string // display name, "" none
	Address  mailaddr.Address
	Role     Role     // default member
	Delivery Delivery // default regular
}

// ParseNew parses an address for adding: a bare address, or one with a
// display name as an address book writes it ("Ann Lee <ann@example.org>",
// "\"Lee, Ann\" <ann@example.org>").
func ParseNew(s string, role Role, delivery Delivery) (New, error) {
	given, name := strings.TrimSpace(s), ""
	if strings.ContainsAny(given, "<\"") {
		if pa, err := mail.ParseAddress(given); err == nil {
			given, name = pa.Address, mailmsg.Clean(pa.Name, 200)
		}
	}
	a, err := mailaddr.Parse(given)
	if err != nil {
		return New{}, err
	}
	return New{Given: given, Name: name, Address: a, Role: role, Delivery: delivery}, nil
}

// Named is an address with its display name for a To: field.
func Named(name, address string) string {
	if name == "" {
		return address
	}
	return (&mail.Address{Name: name, Address: address}).String()
}

// Existing returns which of the given normalised addresses are already
// members of the list.
func Existing(ctx context.Context, q db.Querier, listID int64, norms []string) ([]string, error) {
	var found []string
	err := q.SelectContext(ctx, &found,
		`SELECT address_norm FROM members WHERE list_id = $1 AND address_norm = ANY($2) ORDER BY address_norm`,
		listID, norms)
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	return found, nil
}

// Add inserts members in one statement, however many there are, and
// returns the normalised addresses it added. Addresses that are already
// members are left untouched and not returned.
func Add(ctx context.Context, q db.Querier, listID int64, ms []New) ([]string, error) {
	addrs := make([]mailaddr.Address, len(ms))
	for i, m := range ms {
		addrs[i] = m.Address
	}
	own, err := lists.Own(ctx, q, addrs)
	if err != nil {
		return nil, fmt.Errorf("add members: %w", err)
	}
	if len(own) > 0 {
		return nil, errs.Kindf(ErrOwnAddress, "%s is an address of this server (a list or one of its service addresses); it cannot be a member", own[0])
	}
	given := make([]string, len(ms))
	names := make([]string, len(ms))
	norm := make([]string, len(ms))
	roles := make([]string, len(ms))
	modes := make([]string, len(ms))
	for i, m := range ms {
		given[i], norm[i], names[i] = m.Given, m.Address.String(), m.Name
		roles[i], modes[i] = string(orDefault(m.Role, RoleMember)), string(orDefault(m.Delivery, DeliveryRegular))
	}
	digests := map[Delivery]bool{}
	for _, m := range ms {
		if m.Delivery.DigestFormat() != "" && !digests[m.Delivery] {
			if err := checkDigest(ctx, q, listID, m.Delivery); err != nil {
				return nil, err
			}
			digests[m.Delivery] = true
		}
	}
	// New members start as regular members; those who chose a digest are
	// then moved to it by member_delivery, which opens their digest spans.
	var added []struct {
		ID   int64  `db:"id"`
		Norm string `db:"address_norm"`
	}
	err = q.SelectContext(ctx, &added, `
		INSERT INTO members (list_id, address, address_norm, role, delivery, display_name)
		SELECT $1, g, n, r, CASE WHEN d IN ('digest', 'digest-plain', 'summary') THEN 'regular' ELSE d END, dn
		  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(g, n, r, d, dn)
		ON CONFLICT (list_id, address_norm) DO NOTHING
		RETURNING id, address_norm`,
		listID, given, norm, roles, modes, names)
	if err != nil {
		return nil, fmt.Errorf("add members: %w", err)
	}
	modeOf := make(map[string]string, len(ms))
	for i := range ms {
		modeOf[norm[i]] = modes[i]
	}
	if len(added) > 0 {
		ids := make([]int64, len(added))
		for i, a := range added {
			ids[i] = a.ID
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO member_events (list_id, address_norm, event)
			SELECT list_id, address_norm, 'joined' FROM members WHERE id = ANY($1)`, pq.Int64Array(ids)); err != nil {
			return nil, fmt.Errorf("add members: %w", err)
		}
	}
	out := make([]string, len(added))
	byMode := map[string][]int64{}
	for i, a := range added {
		out[i] = a.Norm
		if mode := modeOf[a.Norm]; Delivery(mode).DigestFormat() != "" {
			byMode[mode] = append(byMode[mode], a.ID)
		}
	}
	for mode, ids := range byMode {
		if err := setDelivery(ctx, q, ids, Delivery(mode)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setDelivery changes members' delivery mode and their digest spans
// together (migrations/functions/member_delivery.sql).
func setDelivery(ctx context.Context, q db.Querier, ids []int64, d Delivery) error {
	if _, err := q.ExecContext(ctx, `SELECT member_delivery($1, $2)`, pq.Int64Array(ids), string(d)); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	return nil
}

func orDefault[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}

// cols are the columns Member scans; named so a new column never breaks it.
const cols = `id, list_id, address, address_norm, display_name, role, delivery, status, moderated, self_copy, disabled_reason, joined_at, updated_at`

// Get returns one member of a list.
func Get(ctx context.Context, q db.Querier, listID int64, address string) (Member, error) {
	a, err := mailaddr.Parse(address)
	if err != nil {
		return Member{}, err
	}
	var m Member
	err = q.GetContext(ctx, &m, `SELECT `+cols+` FROM members WHERE list_id = $1 AND address_norm = $2`, listID, a.String())
	if db.IsNoRows(err) {
		return Member{}, errs.Kindf(ErrNotFound, "%s is not a member", a)
	}
	if err != nil {
		return Member{}, fmt.Errorf("get member: %w", err)
	}
	return m, nil
}

// Filter narrows All.
type Filter struct {
	Role   Role   // empty: any
	Status Status // empty: any
}

// All returns the list's members in address order.
func All(ctx context.Context, q db.Querier, listID int64, f Filter) ([]Member, error) {
	var ms []Member
	err := q.SelectContext(ctx, &ms, `
		SELECT `+cols+` FROM members WHERE list_id = $1
		   AND ($2 = '' OR role = $2) AND ($3 = '' OR status = $3)
		 ORDER BY address_norm`, listID, string(f.Role), string(f.Status))
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return ms, nil
}

// Remove deletes a member.
func Remove(ctx context.Context, q db.Querier, listID int64, address string) error {
	m, err := Get(ctx, q, listID, address)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `WITH gone AS (DELETE FROM members WHERE id = $1 RETURNING list_id, address_norm)
		INSERT INTO member_events (list_id, address_norm, event) SELECT list_id, address_norm, 'left' FROM gone`, m.ID); err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	return nil
}

// Settings are the changeable parts of a membership; nil leaves a field as
// it is.
type Settings struct {
	Role      *Role
	Delivery  *Delivery
	Status    *Status
	Moderated *bool
	SelfCopy  *bool
}

// Update changes the settings that are set in s.
func Update(ctx context.Context, q db.Querier, listID int64, address string, s Settings) (Member, error) {
	m, err := Get(ctx, q, listID, address)
	if err != nil {
		return Member{}, err
	}
	if s.Delivery != nil && *s.Delivery != m.Delivery {
		if err := checkDigest(ctx, q, listID, *s.Delivery); err != nil {
			return Member{}, err
		}
		if err := setDelivery(ctx, q, []int64{m.ID}, *s.Delivery); err != nil {
			return Member{}, err
		}
	}
	_, err = q.ExecContext(ctx, `
		UPDATE members SET role = coalesce($2, role),
		       status = coalesce($3, status), moderated = coalesce($4, moderated),
		       self_copy = coalesce($5, self_copy), updated_at = now()
		 WHERE id = $1`, m.ID, s.Role, s.Status, s.Moderated, s.SelfCopy)
	if err != nil {
		return Member{}, fmt.Errorf("update member: %w", err)
	}
	return Get(ctx, q, listID, address)
}

// NewArchivePassword gives the member a fresh random archive password
// (what they log in to the IMAP archive with), replacing any earlier
// one, and returns it; only its bcrypt hash is stored.
func NewArchivePassword(ctx context.Context, q db.Querier, memberID int64) (string, error) {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	if _, err := q.ExecContext(ctx, `UPDATE members SET archive_password = $2 WHERE id = $1`, memberID, string(hash)); err != nil {
		return "", fmt.Errorf("archive password: %w", err)
	}
	return pw, nil
}

// ForgetSpans drops the list's digest spans that end at or before
// article before: the digest issues that needed them have been cut and
// expanded (internal/digest decides when).
func ForgetSpans(ctx context.Context, q db.Querier, listID, before int64) error {
	_, err := q.ExecContext(ctx, `DELETE FROM digest_spans WHERE list_id = $1 AND until_article <= $2`, listID, before)
	return err
}
