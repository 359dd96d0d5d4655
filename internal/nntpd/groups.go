package nntpd

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/policy"
)

// group is a list as a newsgroup.
type group struct {
	name string
	list lists.List
}

// GroupName is a list's newsgroup: its address reversed, domain first, as
// Usenet names go (dev@lists.example.org is org.example.lists.dev),
// lower case.
func GroupName(address string) string {
	local, domain, _ := strings.Cut(strings.ToLower(address), "@")
	parts := strings.Split(domain, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(append(parts, local), ".")
}

// groupOf is a list's newsgroup: its own name when it has one.
func groupOf(l lists.List) string {
	if l.Newsgroup != "" {
		return l.Newsgroup
	}
	return GroupName(l.Address)
}

// groups returns the groups this session may see, by name order.
func (ss *session) groups() ([]group, error) {
	ctx, cancel := ss.s.ctx()
	defer cancel()
	all, err := lists.All(ctx, ss.s.o.DB)
	if err != nil {
		return nil, err
	}
	var out []group
	for _, l := range all {
		if l.Archive == lists.ArchivePublic || ss.private[l.ID] {
			out = append(out, group{name: groupOf(l), list: l})
		}
	}
	return out, nil
}

// find returns the visible group called name, looking up only the lists
// it may be the group of (GROUP is frequent; the lists may be many).
func (ss *session) find(name string) (*group, error) {
	name = strings.ToLower(name)
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, nil // no group has such a name (and the database takes no NUL)
	}
	ctx, cancel := ss.s.ctx()
	defer cancel()
	ls, err := lists.Named(ctx, ss.s.o.DB, addressesOf(name), name)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		if groupOf(l) == name && (l.Archive == lists.ArchivePublic || ss.private[l.ID]) {
			return &group{name: name, list: l}, nil
		}
	}
	return nil, nil
}

// maxGroupLabels bounds the names find tries: no list address has more
// labels than this.
const maxGroupLabels = 64

// addressesOf returns the list addresses whose derived group name
// (GroupName) may be name: "org.example.lists.dev" is
// dev@lists.example.org, or lists.dev@example.org, or dev@… (a local
// part may hold dots).
func addressesOf(name string) []string {
	labels := strings.Split(name, ".")
	if len(labels) > maxGroupLabels {
		return nil
	}
	var out []string
	for k := 1; k < len(labels); k++ {
		domain := slices.Clone(labels[:k])
		slices.Reverse(domain)
		out = append(out, strings.Join(labels[k:], ".")+"@"+strings.Join(domain, "."))
	}
	return out
}

// wildmat reports whether name matches an RFC 3977 wildmat: patterns
// separated by commas, each negated by a leading "!", the last that
// matches deciding. Each pattern is matched by policy.Glob, in linear
// time, so no pattern can make the server backtrack.
func wildmat(pattern, name string) bool {
	match := false
	for _, p := range strings.Split(pattern, ",") {
		neg := strings.HasPrefix(p, "!")
		if policy.Glob(strings.ToLower(strings.TrimPrefix(p, "!")), name) {
			match = !neg
		}
	}
	return match
}

// list answers LIST [ACTIVE|ACTIVE.TIMES|NEWSGROUPS [wildmat] |
// OVERVIEW.FMT | HEADERS].
func (ss *session) list(args []string) {
	kind := "ACTIVE"
	if len(args) > 0 {
		kind = strings.ToUpper(args[0])
	}
	pattern := "*"
	if len(args) > 1 {
		pattern = args[1]
	}
	switch kind {
	case "OVERVIEW.FMT":
		ss.reply("215 order of fields in overview database")
		ss.w.WriteString("Subject:\r\nFrom:\r\nDate:\r\nMessage-ID:\r\nReferences:\r\n:bytes\r\n:lines\r\nXref:full\r\n.\r\n")
		return
	case "HEADERS":
		ss.reply("215 headers and metadata items supported")
		ss.w.WriteString(":\r\n:bytes\r\n:lines\r\n.\r\n")
		return
	case "ACTIVE", "ACTIVE.TIMES", "NEWSGROUPS":
	default:
		ss.reply("501 unknown LIST keyword")
		return
	}
	gs, err := ss.groups()
	if err != nil {
		ss.failed(err)
		return
	}
	ss.reply("215 list follows")
	for _, g := range gs {
		if !wildmat(pattern, g.name) {
			continue
		}
		switch kind {
		case "ACTIVE":
			_, low, high := counts(g)
			ss.reply("%s %d %d n", g.name, high, max(low, 1))
		case "ACTIVE.TIMES":
			ss.reply("%s %d %s", g.name, g.list.CreatedAt.Unix(), "parley")
		case "NEWSGROUPS":
			ss.reply("%s\t%s", g.name, oneLine(orDefault(g.list.Description, g.list.DisplayName)))
		}
	}
	ss.w.WriteString(".\r\n")
}

// counts are a group's article count and range. Article numbers are
// gapless from 1 (docs/architecture.md), so the list's counter gives all
// three exactly, without counting.
func counts(g group) (n, low, high int64) {
	high = g.list.NextArticle - 1
	if high < 1 {
		return 0, 0, 0
	}
	return high, 1, high
}

// groupCmd answers GROUP and LISTGROUP: a group that is not visible is
// 411, whether it exists or not.
func (ss *session) groupCmd(verb string, args []string) {
	g := ss.group
	if len(args) > 0 {
		var err error
		if g, err = ss.find(args[0]); err != nil {
			ss.failed(err)
			return
		}
		if g == nil {
			ss.reply("411 no such newsgroup")
			return
		}
	}
	if g == nil {
		ss.reply("412 no newsgroup selected")
		return
	}
	n, low, high := counts(*g)
	ss.group, ss.current = g, low
	if n == 0 {
		low, high = 1, 0
	}
	ss.reply("211 %d %d %d %s", n, low, high, g.name)
	if verb == "GROUP" {
		return
	}
	lo, hi := low, high
	if len(args) > 1 {
		var ok bool
		if lo, hi, ok = parseRange(args[1], high); !ok {
			ss.w.WriteString(".\r\n")
			return
		}
	}
	ctx, cancel := ss.s.ctx()
	defer cancel()
	err := archive.EachEntry(ctx, ss.s.o.DB, g.list.ID, lo, hi, func(e archive.Entry) error {
		_, err := ss.w.WriteString(itoa(e.Article) + "\r\n")
		return err
	})
	if err != nil {
		ss.log.Error("nntp listgroup", "event", "nntp_error", "err", err)
	}
	ss.w.WriteString(".\r\n")
}

// move answers NEXT and LAST.
func (ss *session) move(next bool) {
	if ss.group == nil {
		ss.reply("412 no newsgroup selected")
		return
	}
	if ss.current == 0 {
		ss.reply("420 no current article")
		return
	}
	ctx, cancel := ss.s.ctx()
	defer cancel()
	a, err := archive.ArticleNear(ctx, ss.s.o.DB, ss.group.list.ID, ss.current, next)
	if err != nil {
		ss.failed(err)
		return
	}
	if a == 0 {
		ss.reply(map[bool]string{true: "421 no next article", false: "422 no previous article"}[next])
		return
	}
	e, err := archive.ArticleByNumber(ctx, ss.s.o.DB, ss.group.list.ID, a)
	if err != nil {
		ss.failed(err)
		return
	}
	ss.current = a
	ss.reply("223 %d <%s>", a, e.MessageID)
}

// newgroups answers NEWGROUPS date time [GMT]: the groups made since.
func (ss *session) newgroups(args []string) {
	since, ok := parseDate(args)
	if !ok {
		ss.reply("501 NEWGROUPS yyyymmdd hhmmss [GMT]")
		return
	}
	gs, err := ss.groups()
	if err != nil {
		ss.failed(err)
		return
	}
	ss.reply("231 new newsgroups follow")
	for _, g := range gs {
		if !g.list.CreatedAt.Before(since) {
			_, low, high := counts(g)
			ss.reply("%s %d %d n", g.name, high, max(low, 1))
		}
	}
	ss.w.WriteString(".\r\n")
}

// newnews answers NEWNEWS wildmat date time [GMT]: the Message-IDs of the
// posts that arrived since, in the matching groups.
func (ss *session) newnews(args []string) {
	if len(args) < 3 {
		ss.reply("501 NEWNEWS wildmat yyyymmdd hhmmss [GMT]")
		return
	}
	since, ok := parseDate(args[1:])
	if !ok {
		ss.reply("501 NEWNEWS wildmat yyyymmdd hhmmss [GMT]")
		return
	}
	gs, err := ss.groups()
	if err != nil {
		ss.failed(err)
		return
	}
	ss.reply("230 list of new articles follows")
	ctx, cancel := ss.s.ctx()
	defer cancel()
	for _, g := range gs {
		if !wildmat(args[0], g.name) {
			continue
		}
		es, err := archive.Between(ctx, ss.s.o.DB, g.list.ID, since, ss.s.o.Now().Add(time.Hour), 100000)
		if err != nil {
			break
		}
		for _, e := range es {
			ss.reply("<%s>", e.MessageID)
		}
	}
	ss.w.WriteString(".\r\n")
}

// parseDate reads "yyyymmdd hhmmss [GMT]" (or yymmdd), in UTC.
func parseDate(args []string) (time.Time, bool) {
	if len(args) < 2 {
		return time.Time{}, false
	}
	d := args[0]
	if len(d) == 6 {
		// RFC 3977 7.3.2: a two-digit year within 50 years of now.
		d = "20" + d
	}
	t, err := time.Parse("20060102 150405", d+" "+args[1])
	return t.UTC(), err == nil
}

func (ss *session) failed(err error) {
	ss.log.Error("nntp command failed", "event", "nntp_error", "err", err)
	ss.reply("403 internal error, try again later")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
