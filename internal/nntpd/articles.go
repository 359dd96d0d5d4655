package nntpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/mailmsg"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// parseRange reads "n", "n-" or "n-m" (RFC 3977 section 4.2); "n-" ends
// at high. Numbers out of range or backwards give an empty range, never
// an error the client cannot act on.
func parseRange(s string, high int64) (lo, hi int64, ok bool) {
	a, b, dash := strings.Cut(s, "-")
	lo, err := strconv.ParseInt(a, 10, 64)
	if err != nil || lo < 0 {
		return 0, 0, false
	}
	switch {
	case !dash:
		hi = lo
	case b == "":
		hi = high
	default:
		if hi, err = strconv.ParseInt(b, 10, 64); err != nil || hi < 0 {
			return 0, 0, false
		}
	}
	return lo, hi, true
}

// target is what ARTICLE, HEAD, BODY, STAT, OVER and HDR name: an
// article by number in the current group, the current one, or a
// Message-ID in any group this session may see.
type target struct {
	g       *group
	article archive.Article
	number  int64 // 0 when named by Message-ID
}

var (
	errNoGroup   = errors.New("412 no newsgroup selected")
	errNoCurrent = errors.New("420 current article number is invalid")
	errNoNumber  = errors.New("423 no article with that number")
	errNoMsgID   = errors.New("430 no article with that message-id")
)

// resolve finds the article an argument names.
func (ss *session) resolve(arg string) (target, error) {
	ctx, cancel := ss.s.ctx()
	defer cancel()
	if strings.HasPrefix(arg, "<") && strings.HasSuffix(arg, ">") {
		gs, err := ss.groups()
		if err != nil {
			return target{}, err
		}
		ids := make([]int64, len(gs))
		for i, g := range gs {
			ids[i] = g.list.ID
		}
		listID, a, err := archive.ByMessageIDIn(ctx, ss.s.o.DB, ids, arg[1:len(arg)-1])
		if errors.Is(err, archive.ErrNoArticle) {
			return target{}, errNoMsgID
		}
		if err != nil {
			return target{}, err
		}
		for i := range gs {
			if gs[i].list.ID == listID {
				return target{g: &gs[i], article: a}, nil
			}
		}
		return target{}, errNoMsgID
	}
	if ss.group == nil {
		return target{}, errNoGroup
	}
	n := ss.current
	if arg != "" {
		var err error
		if n, err = strconv.ParseInt(arg, 10, 64); err != nil || n < 1 {
			return target{}, errNoNumber
		}
	} else if n == 0 {
		return target{}, errNoCurrent
	}
	a, err := ss.byNumber(ctx, n)
	if errors.Is(err, archive.ErrNoArticle) {
		if arg == "" {
			return target{}, errNoCurrent
		}
		return target{}, errNoNumber
	}
	return target{g: ss.group, article: a, number: n}, err
}

// answer writes a protocol error, or reports an internal one.
func (ss *session) answer(err error) {
	switch err {
	case errNoGroup, errNoCurrent, errNoNumber, errNoMsgID:
		ss.reply("%s", err.Error())
	default:
		ss.failed(err)
	}
}

// article answers ARTICLE, HEAD, BODY and STAT.
func (ss *session) article(verb string, args []string) {
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	t, err := ss.resolve(arg)
	if err != nil {
		ss.answer(err)
		return
	}
	if t.number > 0 {
		ss.current = t.number
	}
	code := map[string]int{"ARTICLE": 220, "HEAD": 221, "BODY": 222, "STAT": 223}[verb]
	ss.reply("%d %d <%s>", code, t.number, t.article.MessageID)
	if verb == "STAT" {
		return
	}
	head, body := ss.withNewsHeaders(t)
	switch verb {
	case "ARTICLE":
		dotted(ss.w, append(append(head, '\r', '\n'), body...))
	case "HEAD":
		dotted(ss.w, head)
	case "BODY":
		dotted(ss.w, body)
	}
}

// withNewsHeaders returns a post's header, with the fields a news
// article carries (RFC 5536) put first and any of theirs it came with
// left out: Path (this server, then the path the article came by when
// it came by news, else "not-for-mail", as a reader server of its own
// articles writes it), Newsgroups (its group), Xref (its number there,
// which clients use to mark it read) — and its body.
func (ss *session) withNewsHeaders(t target) (head, body []byte) {
	raw := t.article.Raw
	n := mailmsg.HeaderLen(raw) // a post may be all header
	hdr, body := raw[:n], raw[n:]
	if bytes.HasSuffix(hdr, []byte("\r\n\r\n")) || n == 2 {
		hdr = hdr[:n-2] // the blank line: ARTICLE puts it back before the body
	}
	var b bytes.Buffer
	b.Grow(len(hdr) + 200)
	b.WriteString("Path: " + ss.s.o.Hostname + "!" + pathOf(hdr) + "\r\n")
	b.WriteString("Newsgroups: " + t.g.name + "\r\n")
	b.WriteString("Xref: " + ss.s.o.Hostname + " " + t.g.name + ":" + itoa(t.article.Article) + "\r\n")
	skip := false
	for line := range bytes.Lines(hdr) {
		if line[0] != ' ' && line[0] != '\t' { // not a continuation: a new field
			name, _, _ := bytes.Cut(line, []byte(":"))
			skip = bytes.EqualFold(name, []byte("Path")) || bytes.EqualFold(name, []byte("Newsgroups")) ||
				bytes.EqualFold(name, []byte("Xref"))
		}
		if !skip {
			b.Write(line)
		}
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), body
}

// pathOf is the Path a stored article came with, when it came by news
// and the path is well formed (path identities and "!", RFC 5536
// §3.1.5, on one line); "not-for-mail" otherwise.
func pathOf(head []byte) string {
	const none = "not-for-mail"
	for line := range bytes.Lines(head) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(name, []byte("Path")) {
			continue
		}
		p := string(bytes.TrimSpace(value))
		if p == "" || len(p) > 512 || strings.Trim(p, pathChars) != "" {
			return none
		}
		return p
	}
	return none
}

// pathChars are those of path identities and their "!" separators.
const pathChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_!"

// over answers OVER/XOVER [range|message-id], from the stored fields.
func (ss *session) over(args []string) {
	if len(args) > 0 && strings.HasPrefix(args[0], "<") {
		t, err := ss.resolve(args[0])
		if err != nil {
			ss.answer(err)
			return
		}
		ss.reply("224 overview information follows")
		ss.w.WriteString(ss.overLine(t.g, t.article.Entry, 0))
		ss.w.WriteString(".\r\n")
		return
	}
	lo, hi, ok := ss.rangeArg(args)
	if !ok {
		return
	}
	ss.reply("224 overview information follows")
	ctx, cancel := ss.s.ctx()
	defer cancel()
	err := archive.EachEntry(ctx, ss.s.o.DB, ss.group.list.ID, lo, hi, func(e archive.Entry) error {
		_, err := ss.w.WriteString(ss.overLine(ss.group, e, e.Article))
		return err
	})
	if err != nil {
		ss.log.Error("nntp over", "event", "nntp_error", "err", err)
	}
	ss.w.WriteString(".\r\n")
}

// rangeArg reads the range argument of OVER and HDR in the current group
// (none: the current article), answering when there is nothing to read.
func (ss *session) rangeArg(args []string) (lo, hi int64, ok bool) {
	if ss.group == nil {
		ss.reply("412 no newsgroup selected")
		return 0, 0, false
	}
	if len(args) == 0 {
		if ss.current == 0 {
			ss.reply("420 no current article")
			return 0, 0, false
		}
		return ss.current, ss.current, true
	}
	_, _, high := counts(*ss.group)
	lo, hi, ok = parseRange(args[0], high)
	if !ok {
		ss.reply("501 bad range")
	}
	return lo, hi, ok
}

// overLine is one line of OVER: number (0 by Message-ID), Subject, From,
// Date, Message-ID, References, bytes, the body's lines, Xref.
func (ss *session) overLine(g *group, e archive.Entry, n int64) string {
	refs := make([]string, len(e.Refs))
	for i, r := range e.Refs {
		refs[i] = "<" + r + ">"
	}
	fields := []string{itoa(n), headerValue(e.Subject), fromValue(e), dateValue(e), "<" + e.MessageID + ">",
		strings.Join(refs, " "), itoa(e.Size), itoa(e.Lines), "Xref: " + ss.s.o.Hostname + " " + g.name + ":" + itoa(e.Article)}
	for i, f := range fields {
		fields[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\r' || r == '\n' || r == 0 {
				return ' '
			}
			return r
		}, f)
	}
	return strings.Join(fields, "\t") + "\r\n"
}

// headerValue is decoded header text as a header carries it: encoded
// words (RFC 2047) when it is not ASCII.
func headerValue(s string) string {
	for _, r := range s {
		if r >= 0x80 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

func fromValue(e archive.Entry) string {
	if e.FromName == "" {
		return e.From
	}
	return (&mail.Address{Name: e.FromName, Address: e.From}).String()
}

func dateValue(e archive.Entry) string {
	t := e.ReceivedAt
	if e.SentAt != nil {
		t = *e.SentAt
	}
	return t.Format(time.RFC1123Z)
}

// hdr answers HDR/XHDR field [range|message-id]. The overview's fields
// come from the stored values; any other field from the article itself.
// XHDR (RFC 2980) answers 221 where HDR answers 225: older clients (suck)
// wait for that code.
func (ss *session) hdr(args []string, legacy bool) {
	if len(args) == 0 {
		ss.reply("501 HDR field [range|message-id]")
		return
	}
	field := strings.ToLower(args[0])
	var items []target
	if len(args) > 1 && strings.HasPrefix(args[1], "<") {
		t, err := ss.resolve(args[1])
		if err != nil {
			ss.answer(err)
			return
		}
		t.number = 0
		items = append(items, t)
	} else {
		lo, hi, ok := ss.rangeArg(args[1:])
		if !ok {
			return
		}
		ctx, cancel := ss.s.ctx()
		err := archive.EachEntry(ctx, ss.s.o.DB, ss.group.list.ID, lo, min(hi, lo+100000), func(e archive.Entry) error {
			items = append(items, target{g: ss.group, article: archive.Article{Entry: e}, number: e.Article})
			return nil
		})
		cancel()
		if err != nil {
			ss.failed(err)
			return
		}
	}
	if legacy {
		ss.reply("221 headers follow")
	} else {
		ss.reply("225 headers follow")
	}
	for _, t := range items {
		ss.w.WriteString(itoa(t.number) + " " + ss.fieldOf(t, field) + "\r\n")
	}
	ss.w.WriteString(".\r\n")
}

func (ss *session) fieldOf(t target, field string) string {
	e := t.article.Entry
	switch field {
	case "subject":
		return headerValue(e.Subject)
	case "from":
		return fromValue(e)
	case "date":
		return dateValue(e)
	case "message-id":
		return "<" + e.MessageID + ">"
	case ":bytes":
		return itoa(e.Size)
	case ":lines":
		return itoa(e.Lines)
	case "newsgroups":
		return t.g.name
	case "xref":
		return ss.s.o.Hostname + " " + t.g.name + ":" + itoa(e.Article)
	}
	raw := t.article.Raw
	if raw == nil {
		ctx, cancel := ss.s.ctx()
		a, err := archive.ArticleByNumber(ctx, ss.s.o.DB, t.g.list.ID, e.Article)
		cancel()
		if err != nil {
			return ""
		}
		raw = a.Raw
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(h.Get(field)), " ")
}

// Read-ahead for clients that fetch a group article by article (suck,
// pullnews, a newsreader catching up): a window of the articles that
// follow is read with the first, bounded in count and in size.
const (
	aheadCount = 64
	aheadMax   = 256 << 10 // larger articles are read alone
	aheadBytes = 1 << 20   // a session holds at most this much read ahead
)

// byNumber returns article n of the current group, from the read-ahead
// window when it holds it.
func (ss *session) byNumber(ctx context.Context, n int64) (archive.Article, error) {
	id := ss.group.list.ID
	if ss.ahead.list == id {
		for _, a := range ss.ahead.articles {
			if a.Article == n && a.Raw != nil {
				return a, nil
			}
		}
	}
	as, err := archive.ArticlesFrom(ctx, ss.s.o.DB, id, n, aheadCount, aheadMax, aheadBytes)
	if err != nil {
		return archive.Article{}, err
	}
	if len(as) == 0 || as[0].Article != n {
		return archive.Article{}, errs.Kindf(archive.ErrNoArticle, "no article %d", n)
	}
	ss.ahead.list, ss.ahead.articles = id, as
	if as[0].Raw == nil {
		return archive.ArticleByNumber(ctx, ss.s.o.DB, id, n)
	}
	return as[0], nil
}
