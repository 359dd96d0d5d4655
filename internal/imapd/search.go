package imapd

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/parley-list/parley/internal/mailmsg"
)

// maxSearchDepth bounds NOT/OR nesting: the criteria become one SQL
// expression, built by a walk that must not run away on hostile input.
const maxSearchDepth = 32

var errSearchTooDeep = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
	Text: "Search criteria nested too deeply"}

// Search answers SEARCH and UID SEARCH with one SQL query. Text criteria
// follow IMAP: case-insensitive substring match, on the raw bytes as
// stored (header, body or both); FROM and SUBJECT also match the decoded
// names and subject.
func (s *session) Search(kind imapserver.NumKind, c *imap.SearchCriteria, o *imap.SearchOptions) (*imap.SearchData, error) {
	if s.sel == nil {
		return nil, errNoMailbox
	}
	defer s.srv.o.Metrics.timed("search", time.Now())
	b := &sqlBuilder{sel: s.sel}
	where, err := b.criteria(c, 0)
	if err != nil {
		return nil, err
	}
	args := append([]any{s.sel.listID, int64(s.sel.maxUID())}, b.args...)
	q := `SELECT article FROM messages WHERE list_id = $1 AND article <= $2` + yearCond(s.sel.year) + ` AND ` + where + ` ORDER BY article`
	if s.sel.listID == 0 {
		q, args = s.inboxSearch(q, args)
	}
	ctx, cancel := s.srv.ctx()
	defer cancel()
	var nums []uint32
	if err := s.srv.o.DB.SelectContext(ctx, &nums, q, args...); err != nil {
		s.log.Error("imap search", "event", "imap_error", "list", s.sel.name, "err", err)
		return nil, errInternal
	}
	if o != nil && o.ReturnSave {
		var saved imap.UIDSet
		for _, n := range nums {
			saved.AddNum(imap.UID(n))
		}
		s.sel.saved = saved
	}
	if kind != imapserver.NumKindUID {
		for i, n := range nums {
			nums[i] = s.sel.seqOf(n)
		}
	}
	return searchData(kind, nums), nil
}

// inboxSearch runs a search query against INBOX's one message: a
// common table expression named messages, with the columns searches use,
// stands in for the table.
func (s *session) inboxSearch(q string, args []any) (string, []any) {
	r := s.inboxRow()
	args = append(args, r.Raw, mailmsg.HeaderLen(r.Raw), r.Received)
	n := len(args)
	args = append(args, mailmsg.SearchText(r.Raw))
	return fmt.Sprintf(`WITH messages AS (SELECT 0::bigint AS list_id, 1::bigint AS article, $%d::bytea AS raw,
		length($%d::bytea) AS size, $%d::int AS header_len, $%d::timestamptz AS received_at, NULL::timestamptz AS sent_at,
		'parley'::text AS from_name, 'postmaster@invalid'::text AS from_addr, 'About this server'::text AS subject,
		$%d::text AS search_text) `,
		n-2, n-2, n-1, n, n+1) + q, args
}

// searchData answers with nums (UIDs or sequence numbers, ascending).
func searchData(kind imapserver.NumKind, nums []uint32) *imap.SearchData {
	d := &imap.SearchData{Count: uint32(len(nums))}
	if len(nums) > 0 {
		d.Min, d.Max = nums[0], nums[len(nums)-1]
	}
	if kind == imapserver.NumKindUID {
		var set imap.UIDSet
		for _, n := range nums {
			set.AddNum(imap.UID(n))
		}
		d.All = set
	} else {
		var set imap.SeqSet
		for _, n := range nums {
			set.AddNum(n)
		}
		d.All = set
	}
	return d
}

type sqlBuilder struct {
	sel  *selected
	args []any
}

func (b *sqlBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args)+2)
}

// criteria returns the SQL condition for c: a conjunction of its parts.
func (b *sqlBuilder) criteria(c *imap.SearchCriteria, depth int) (string, error) {
	if depth > maxSearchDepth {
		return "", errSearchTooDeep
	}
	parts := []string{"true"}
	for _, set := range c.SeqNum {
		parts = append(parts, b.spansSQL(b.sel.spans(set)))
	}
	for _, set := range c.UID {
		parts = append(parts, b.spansSQL(b.sel.spans(set)))
	}
	parts = append(parts, b.dates(c)...)
	if c.Larger > 0 {
		parts = append(parts, "size > "+b.arg(c.Larger))
	}
	if c.Smaller > 0 {
		parts = append(parts, "size < "+b.arg(c.Smaller))
	}
	for _, h := range c.Header {
		parts = append(parts, b.header(h.Key, h.Value))
	}
	for _, t := range c.Body {
		parts = append(parts, b.body(t))
	}
	for _, t := range c.Text {
		parts = append(parts, b.text(t))
	}
	for _, f := range c.Flag {
		parts = append(parts, b.flag(f, true))
	}
	for _, f := range c.NotFlag {
		parts = append(parts, b.flag(f, false))
	}
	for i := range c.Not {
		sub, err := b.criteria(&c.Not[i], depth+1)
		if err != nil {
			return "", err
		}
		parts = append(parts, "NOT ("+sub+")")
	}
	for i := range c.Or {
		l, err := b.criteria(&c.Or[i][0], depth+1)
		if err != nil {
			return "", err
		}
		r, err := b.criteria(&c.Or[i][1], depth+1)
		if err != nil {
			return "", err
		}
		parts = append(parts, "(("+l+") OR ("+r+"))")
	}
	return strings.Join(parts, " AND "), nil
}

func (b *sqlBuilder) spansSQL(sp []span) string {
	if len(sp) == 0 {
		return "false"
	}
	var or []string
	for _, s := range sp {
		or = append(or, fmt.Sprintf("article BETWEEN %d AND %d", s.lo, s.hi))
	}
	return "(" + strings.Join(or, " OR ") + ")"
}

// dates compares calendar days, as IMAP does (time and zone ignored):
// INTERNALDATE is the archive time, the sent date is the Date: header.
func (b *sqlBuilder) dates(c *imap.SearchCriteria) []string {
	var out []string
	day := func(t time.Time) string { return b.arg(t.Format("2006-01-02")) + "::date" }
	if !c.Since.IsZero() {
		out = append(out, "received_at::date >= "+day(c.Since))
	}
	if !c.Before.IsZero() {
		out = append(out, "received_at::date < "+day(c.Before))
	}
	if !c.SentSince.IsZero() {
		out = append(out, "coalesce(sent_at, received_at)::date >= "+day(c.SentSince))
	}
	if !c.SentBefore.IsZero() {
		out = append(out, "coalesce(sent_at, received_at)::date < "+day(c.SentBefore))
	}
	return out
}

// headerText is the raw header as text, in PostgreSQL's escape encoding,
// which maps every byte string (valid UTF-8 or not) to text. The trigram
// index messages_header_trgm is on exactly this expression;
// message_header_text (migrations/00009_intake_cost.sql) is that
// encode() with its true cost, so that the planner uses the index on
// small archives too.
const headerText = "message_header_text(raw, header_len)"

// rawText is the whole raw message so encoded, which nothing indexes any
// more: it is only asked of posts whose search_text is still to be
// computed (messages_search_missing finds them). message_text
// (migrations/00001_baseline.sql) is that encode() with its true cost:
// without it the planner costs a LIKE over every post's text as one
// comparison and reads the whole list rather than ask the indexes.
const rawText = "message_text(raw)"

// pattern returns an ILIKE pattern matching needle anywhere, needle
// encoded as rawText encodes bytes (so non-ASCII needles match their
// UTF-8 bytes) and LIKE's special characters escaped.
func pattern(needle string) string {
	return "%" + likeEscaper.Replace(escapeBytes(needle)) + "%"
}

// likeEscaper escapes LIKE's special characters (backslash is the escape).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// text matches needle anywhere in the message: in the raw header, or in
// the decoded text a reader sees of the body (search_text, case-folded in
// Go); each side is a trigram index lookup. A post archived before
// search_text existed, and not yet filled in, is matched on its raw bytes.
func (b *sqlBuilder) text(needle string) string {
	p := b.arg(pattern(needle))
	return fmt.Sprintf("(%s ILIKE %s OR search_text LIKE %s OR (search_text IS NULL AND %s ILIKE %s))",
		headerText, p, b.arg(searchPattern(needle)), rawText, p)
}

// body matches needle in the text a reader sees of the body: transfer
// encodings undone, charsets converted, HTML reduced to text
// (mailmsg.SearchText). A post archived before search_text existed, and
// not yet filled in, is matched on its raw body as before.
func (b *sqlBuilder) body(needle string) string {
	p := b.arg(pattern(needle))
	return fmt.Sprintf("(search_text LIKE %s OR (search_text IS NULL AND %s ILIKE %s AND encode(substring(raw FROM header_len + 1), 'escape') ILIKE %s))",
		b.arg(searchPattern(needle)), rawText, p, p)
}

// searchPattern is a LIKE pattern matching needle anywhere in search_text,
// folded the same way.
func searchPattern(needle string) string {
	return "%" + likeEscaper.Replace(mailmsg.FoldSearch(needle)) + "%"
}

// header matches a header field by name whose value contains needle
// (an empty needle: the field is present). A non-empty needle must occur
// in the header, which the index answers; the regular expression then
// checks it is in that field. FROM and SUBJECT also match the decoded
// forms stored at ingest, which have their own indexes.
func (b *sqlBuilder) header(key, needle string) string {
	re := `(^|\n)` + regexp.QuoteMeta(key) + `[ \t]*:([^\n]|\n[ \t])*` + regexp.QuoteMeta(escapeBytes(needle))
	m := fmt.Sprintf("encode(substring(raw FROM 1 FOR header_len), 'escape') ~* %s", b.arg(re))
	if needle != "" {
		m = fmt.Sprintf("(%s ILIKE %s AND %s)", headerText, b.arg(pattern(needle)), m)
	}
	if strings.ContainsRune(needle, 0) {
		return m // text columns hold no NUL
	}
	switch strings.ToLower(key) {
	case "from":
		m = fmt.Sprintf("(%s OR (from_name || ' <' || from_addr || '>') ILIKE %s)", m, b.arg(plainPattern(needle)))
	case "subject":
		m = fmt.Sprintf("(%s OR subject ILIKE %s)", m, b.arg(plainPattern(needle)))
	}
	return m
}

// plainPattern is pattern for a text column (no byte encoding).
func plainPattern(needle string) string {
	return "%" + likeEscaper.Replace(strings.ToValidUTF8(needle, "\uFFFD")) + "%"
}

// escapeBytes renders s as PostgreSQL's escape encoding does: bytes
// NUL and bytes with the high bit set as \ooo, backslash doubled.
func escapeBytes(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c == 0 || c >= 0x80:
			fmt.Fprintf(&sb, `\%03o`, c)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// flag matches session flags: they live only in this session, so the
// condition is the list of articles that carry the flag.
func (b *sqlBuilder) flag(f imap.Flag, has bool) string {
	var with []string
	for seq, fs := range b.sel.flags {
		if hasFlag(fs, f) {
			with = append(with, fmt.Sprint(seq))
		}
	}
	cond := "false"
	if len(with) > 0 {
		cond = "article IN (" + strings.Join(with, ",") + ")"
	}
	if !has {
		return "NOT " + cond
	}
	return cond
}
