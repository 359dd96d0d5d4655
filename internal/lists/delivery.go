package lists

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // digest time zones work on a host without a zoneinfo database

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/mailaddr"
)

// Digest is when and how a list's digests are cut (internal/digest).
type Digest struct {
	Threshold int64          `db:"threshold" json:"threshold"` // bytes of posts that cut an issue; 0: none
	Schedule  Schedule       `db:"schedule" json:"schedule"`
	TZ        string         `db:"tz" json:"tz"`         // the schedule's IANA time zone
	Volume    string         `db:"volume" json:"volume"` // a new volume each year, month, or never
	Formats   pq.StringArray `db:"formats" json:"formats"`
}

// Location is the digest schedule's time zone (UTC if it cannot be
// loaded, which validation prevents).
func (d Digest) Location() *time.Location {
	loc, err := time.LoadLocation(d.TZ)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Offers reports whether members may choose a digest format.
func (d Digest) Offers(format string) bool { return slices.Contains(d.Formats, format) }

// Digest formats.
var digestFormats = []string{"mime", "plain", "summary"}

// Schedule is when a digest issue is cut by the clock: daily or weekly
// at a time of day, or never (only by size, or by hand).
type Schedule struct {
	Every   string       // "daily", "weekly" or "" (never)
	Weekday time.Weekday // for weekly
	Hour    int
	Minute  int
}

var (
	scheduleRE = regexp.MustCompile(`^(?:(none)|(daily)|(weekly) (mon|tue|wed|thu|fri|sat|sun)[a-z]*)(?: ([0-9]{1,2}):([0-9]{2}))?$`)
	weekdays   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

// ParseSchedule reads "daily", "daily HH:MM", "weekly DAY", "weekly DAY
// HH:MM" (DAY: mon … sun, or the whole name) or "none"; the time of day
// defaults to 06:00.
func ParseSchedule(s string) (Schedule, error) {
	in := strings.ToLower(strings.Join(strings.Fields(s), " "))
	m := scheduleRE.FindStringSubmatch(in)
	if m == nil {
		return Schedule{}, errs.Invalidf(`digest schedule %q: want "daily HH:MM", "weekly DAY HH:MM" or "none"`, s)
	}
	if m[1] != "" {
		if m[5] != "" {
			return Schedule{}, errs.Invalidf(`digest schedule %q: "none" takes no time`, s)
		}
		return Schedule{}, nil
	}
	sc := Schedule{Every: "daily", Hour: 6}
	if m[3] != "" {
		sc.Every, sc.Weekday = "weekly", time.Weekday(slices.Index(weekdays, m[4]))
	}
	if m[5] != "" {
		fmt.Sscan(m[5], &sc.Hour)
		fmt.Sscan(m[6], &sc.Minute)
		if sc.Hour > 23 || sc.Minute > 59 {
			return Schedule{}, errs.Invalidf("digest schedule %q: no such time of day", s)
		}
	}
	return sc, nil
}

// String is the schedule as ParseSchedule reads it (and the column
// stores it).
func (s Schedule) String() string {
	switch s.Every {
	case "daily":
		return fmt.Sprintf("daily %02d:%02d", s.Hour, s.Minute)
	case "weekly":
		return fmt.Sprintf("weekly %s %02d:%02d", weekdays[s.Weekday], s.Hour, s.Minute)
	}
	return "none"
}

// Scan reads the column.
func (s *Schedule) Scan(src any) error {
	var text string
	switch v := src.(type) {
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return fmt.Errorf("schedule: cannot scan %T", src)
	}
	sc, err := ParseSchedule(text)
	*s = sc
	return err
}

// MarshalText shows the schedule in JSON as text.
func (s Schedule) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Last returns the latest time at or before now that the schedule names,
// in loc; zero for a schedule that names none. A time of day that a
// daylight-saving change skips is read as time.Date normalises it.
func (s Schedule) Last(now time.Time, loc *time.Location) time.Time {
	if s.Every == "" {
		return time.Time{}
	}
	local := now.In(loc)
	for back := 0; back <= 8; back++ {
		d := local.AddDate(0, 0, -back)
		at := time.Date(d.Year(), d.Month(), d.Day(), s.Hour, s.Minute, 0, 0, loc)
		if at.After(now) || (s.Every == "weekly" && d.Weekday() != s.Weekday) {
			continue
		}
		return at
	}
	return time.Time{}
}

// Reply-To settings besides an address.
const (
	ReplyToAuthor = "author" // Reply-To as the author left it
	ReplyToList   = "list"   // replies go to the list
)

// FooterFields are the placeholders a footer may hold, each filled per
// copy by internal/deliver.
var FooterFields = []string{"{list}", "{list_name}", "{request}", "{owner}", "{archive}", "{member}", "{unsubscribe}"}

var footerField = regexp.MustCompile(`\{[^{}\s]*\}`)

// validateDelivery checks the digest, footer and Reply-To settings.
func (s Settings) validateDelivery() error {
	var errList []error
	if s.DigestThreshold != nil && *s.DigestThreshold < 0 {
		errList = append(errList, errs.Invalidf("digest size: must not be negative"))
	}
	if s.DigestTZ != nil {
		if _, err := time.LoadLocation(*s.DigestTZ); err != nil || *s.DigestTZ == "" || strings.EqualFold(*s.DigestTZ, "local") {
			errList = append(errList, errs.Invalidf("digest time zone %q: want an IANA name such as Europe/Berlin or UTC", *s.DigestTZ))
		}
	}
	if s.DigestVolume != nil && !slices.Contains([]string{"yearly", "monthly", "never"}, *s.DigestVolume) {
		errList = append(errList, errs.Invalidf("digest volume %q: want yearly, monthly or never", *s.DigestVolume))
	}
	if s.DigestFormats != nil {
		if len(*s.DigestFormats) == 0 {
			errList = append(errList, errs.Invalidf("digest formats: name at least one of mime, plain, summary"))
		}
		for _, f := range *s.DigestFormats {
			if !slices.Contains(digestFormats, f) {
				errList = append(errList, errs.Invalidf("digest format %q: want mime, plain or summary", f))
			}
		}
	}
	if s.Footer != nil {
		for _, f := range footerField.FindAllString(*s.Footer, -1) {
			if !slices.Contains(FooterFields, f) {
				errList = append(errList, errs.Invalidf("footer: unknown placeholder %s (known: %s)", f, strings.Join(FooterFields, " ")))
			}
		}
	}
	if s.ReplyTo != nil && *s.ReplyTo != ReplyToAuthor && *s.ReplyTo != ReplyToList {
		if _, err := mailaddr.Parse(*s.ReplyTo); err != nil {
			errList = append(errList, errs.Invalidf("reply-to %q: want author, list or an email address", *s.ReplyTo))
		}
	}
	if len(errList) == 0 {
		return nil
	}
	return errList[0]
}

// ParseFormats reads a comma-separated list of digest formats.
func ParseFormats(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// ArchiveURL is the URL of the list's IMAP mailbox (RFC 5092) under
// base, the IMAP server's URL (imap://lists.example.org).
func ArchiveURL(base string, l List) string {
	// The mailbox is the list address; PathEscape keeps '@' and escapes
	// ';' and '/', which would end the mailbox part of the URL.
	return strings.TrimSuffix(base, "/") + "/" + url.PathEscape(l.Address)
}

// ArticleURL is the IMAP URL of one of the list's posts.
func ArticleURL(base string, l List, article int64) string {
	return fmt.Sprintf("%s;UIDVALIDITY=%d/;UID=%d", ArchiveURL(base, l), l.UIDValidity, article)
}

// WebPath is the path of the list's page in the web archive
// ("/dev@lists.example.org/"), under http.base_url.
func WebPath(l List) string { return "/" + url.PathEscape(l.Address) + "/" }

// WebMessagePath is the permalink path of a post in the web archive: its
// Message-ID (without <>), escaped as one path segment ("/" is %2F), as
// public-inbox names posts. It never changes.
func WebMessagePath(l List, msgid string) string {
	return WebPath(l) + "m/" + url.PathEscape(msgid) + "/"
}
