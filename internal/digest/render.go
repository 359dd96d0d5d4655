package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
)

// Edition is what one copy of an issue is rendered from.
type Edition struct {
	List       lists.List
	Issue      Issue
	Posts      []archive.Article // the issue's posts in article order; Raw is empty for listed ones
	Variant    Variant
	ArchiveURL string // the IMAP archive's URL, for links to posts
	WebURL     string // the web archive's URL (http.base_url); when set, links go to its permalinks
}

// ErrEmpty says a variant holds none of the issue's posts.
var ErrEmpty = errors.New("digest: no post of the issue is this copy's")

// Render returns one copy of an issue, headers and all, in CRLF form; the
// delivery workers add the list's headers, the footer and the signature,
// as to any copy. Rendering the same edition twice gives the same bytes.
func Render(e Edition) ([]byte, error) {
	var posts []archive.Article
	for _, p := range e.Posts {
		if e.Variant.Holds(p.Article) {
			posts = append(posts, p)
		}
	}
	if len(posts) == 0 {
		return nil, ErrEmpty
	}
	format := e.Variant.Format
	if !e.List.Digest.Offers(format) { // the list stopped offering it since
		format = e.List.Digest.Formats[0]
	}
	r := renderer{e: e, posts: posts, listed: map[int64]bool{}}
	for _, a := range e.Issue.Listed {
		r.listed[a] = true
	}
	var out bytes.Buffer
	r.header(&out, format)
	switch format {
	case FormatMIME:
		r.mimeDigest(&out)
	case FormatPlain:
		writeText(&out, r.plain(), "")
	default:
		writeText(&out, r.summary(), "")
	}
	return out.Bytes(), nil
}

type renderer struct {
	e      Edition
	posts  []archive.Article
	listed map[int64]bool
}

// Title is an issue's name, and its subject: "dev Digest, Vol 3, Issue 12".
func Title(l lists.List, is Issue) string {
	return fmt.Sprintf("%s Digest, Vol %d, Issue %d", listName(l), is.Volume, is.Number)
}

func listName(l lists.List) string {
	if l.DisplayName != "" {
		return mailmsg.Clean(l.DisplayName, 100)
	}
	return l.LocalPart
}

// header writes the digest's own header fields.
func (r *renderer) header(out *bytes.Buffer, format string) {
	l, is := r.e.List, r.e.Issue
	from := mail.Address{Name: listName(l) + " digest", Address: mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, "")}
	id := fmt.Sprintf("digest.%d.%d.%s", is.Volume, is.Number, format)
	if !r.e.Variant.Whole(is) {
		h := sha256.Sum256([]byte(r.e.Variant.String()))
		id += "." + hex.EncodeToString(h[:4])
	}
	fields := [][2]string{
		{"From", from.String()},
		{"To", l.Address},
		{"Subject", mime.QEncoding.Encode("utf-8", Title(l, is))},
		{"Date", is.CutAt.In(l.Digest.Location()).Format(time.RFC1123Z)},
		{"Message-ID", "<" + id + "." + l.LocalPart + "@" + l.Domain + ">"},
	}
	if l.PostPolicy != lists.PostAnnounce {
		fields = append(fields, [2]string{"Reply-To", l.Address})
	}
	fields = append(fields, [2]string{"MIME-Version", "1.0"})
	for _, f := range fields {
		out.WriteString(f[0] + ": " + f[1] + "\r\n")
	}
}

// masthead is what every format starts with: what this is and how to
// post, change delivery or reply.
func (r *renderer) masthead() string {
	l, is := r.e.List, r.e.Issue
	var b strings.Builder
	title := Title(l, is)
	fmt.Fprintf(&b, "%s\n\n", title)
	if l.PostPolicy != lists.PostAnnounce {
		fmt.Fprintf(&b, "To post to the list, write to %s.\n", l.Address)
	}
	fmt.Fprintf(&b, "To get each post as it arrives, or no mail, write \"set delivery regular\"\nor \"set delivery nomail\" to %s.\n",
		mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, ""))
	if l.PostPolicy != lists.PostAnnounce {
		fmt.Fprintf(&b, "When replying, please edit your Subject line so it is more specific\nthan \"Re: %s\".\n", title)
	}
	return b.String()
}

// contents is the table of contents: one numbered line per post.
func (r *renderer) contents() string {
	var b strings.Builder
	b.WriteString("Today's Topics:\n\n")
	for i, p := range r.posts {
		fmt.Fprintf(&b, "%4d. %s (%s)\n", i+1, subjectOf(p), authorOf(p))
		if r.listed[p.Article] {
			fmt.Fprintf(&b, "      [too large for the digest (%s); read it at\n      %s ]\n", size(p.Size), r.link(p))
		}
	}
	return b.String()
}

func (r *renderer) link(p archive.Article) string {
	if r.e.WebURL != "" {
		return strings.TrimSuffix(r.e.WebURL, "/") + lists.WebMessagePath(r.e.List, p.MessageID)
	}
	return lists.ArticleURL(r.e.ArchiveURL, r.e.List, p.Article)
}

func subjectOf(p archive.Article) string {
	if s := mailmsg.Clean(p.Subject, 200); s != "" {
		return s
	}
	return "(no subject)"
}

func authorOf(p archive.Article) string {
	if p.FromName != "" {
		return mailmsg.Clean(p.FromName, 100)
	}
	if p.From != "" {
		return p.From
	}
	return "unknown"
}

// mimeDigest writes the MIME digest: a multipart/mixed of the masthead and
// contents as text, then a multipart/digest holding each post as
// message/rfc822, byte for byte as archived.
func (r *renderer) mimeDigest(out *bytes.Buffer) {
	outer := r.boundary("m")
	inner := r.boundary("d")
	out.WriteString("Content-Type: multipart/mixed; boundary=\"" + outer + "\"\r\n\r\n")
	out.WriteString("This is a digest in MIME format: each post is an attached message.\r\n")
	out.WriteString("\r\n--" + outer + "\r\n")
	writeText(out, r.masthead()+"\n"+r.contents(), Title(r.e.List, r.e.Issue))
	out.WriteString("\r\n--" + outer + "\r\n")
	out.WriteString("Content-Type: multipart/digest; boundary=\"" + inner + "\"\r\n\r\n")
	for _, p := range r.posts {
		if r.listed[p.Article] {
			continue
		}
		out.WriteString("\r\n--" + inner + "\r\n")
		out.WriteString("Content-Type: message/rfc822\r\n")
		if !ascii(p.Raw) {
			out.WriteString("Content-Transfer-Encoding: 8bit\r\n")
		}
		out.WriteString("\r\n")
		// The line break before a delimiter belongs to the delimiter, so
		// the part's body is the archived bytes exactly.
		out.Write(p.Raw)
	}
	out.WriteString("\r\n--" + inner + "--\r\n")
	out.WriteString("\r\n--" + outer + "--\r\n")
}

// boundary returns a boundary that no post of the issue contains:
// derived from the issue, so rendering is repeatable.
func (r *renderer) boundary(tag string) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s %d %d %s", r.e.List.Address, r.e.Issue.Volume, r.e.Issue.Number, r.e.Variant))
	b := "=_parley_" + tag + "_" + hex.EncodeToString(h[:12])
	for r.inPosts("--" + b) {
		b += "_"
	}
	return b
}

func (r *renderer) inPosts(s string) bool {
	for _, p := range r.posts {
		if bytes.Contains(p.Raw, []byte(s)) {
			return true
		}
	}
	return false
}

// RFC 1153 separators.
const (
	preambleSep = "----------------------------------------------------------------------" // 70
	messageSep  = "------------------------------"                                         // 30
)

// plain returns the text of the RFC 1153 digest: masthead and contents,
// the preamble separator, each post's header lines and text between
// message separators, and the trailer.
func (r *renderer) plain() string {
	var b strings.Builder
	b.WriteString(r.masthead() + "\n" + r.contents() + "\n" + preambleSep + "\n\n")
	for _, p := range r.posts {
		date := p.ReceivedAt
		if p.SentAt != nil {
			date = *p.SentAt
		}
		fmt.Fprintf(&b, "Date: %s\nFrom: %s\nSubject: %s\nMessage-ID: <%s>\n\n",
			date.Format(time.RFC1123Z), fromLine(p), subjectOf(p), p.MessageID)
		b.WriteString(r.body(p))
		b.WriteString("\n" + messageSep + "\n\n")
	}
	end := "End of " + Title(r.e.List, r.e.Issue)
	b.WriteString(end + "\n" + strings.Repeat("*", utf8.RuneCountInString(end)) + "\n")
	return b.String()
}

func fromLine(p archive.Article) string {
	if p.FromName == "" {
		return p.From
	}
	return mailmsg.Clean(p.FromName, 100) + " <" + p.From + ">"
}

// body is one post's text in the plain digest, its attachments listed.
func (r *renderer) body(p archive.Article) string {
	if r.listed[p.Article] {
		return fmt.Sprintf("[This post is too large for the digest (%s). Read it at\n%s ]\n", size(p.Size), r.link(p))
	}
	rd := mailmsg.Readable(p.Raw)
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(rd.Text, "\n"), "\n") {
		// A line that looks like a separator would split the post for a
		// digest burster; RFC 934 stuffs it with "- ".
		if len(line) >= len(messageSep) && strings.Trim(line, "-") == "" {
			line = "- " + line
		}
		b.WriteString(line + "\n")
	}
	if rd.Truncated {
		fmt.Fprintf(&b, "\n[The rest of this post is in the archive: %s ]\n", r.link(p))
	}
	if len(rd.Attachments) > 0 {
		b.WriteString("\n")
	}
	for _, a := range rd.Attachments {
		name := a.Name
		if name == "" {
			name = "unnamed"
		}
		fmt.Fprintf(&b, "[Attachment: %s (%s, %s), in the archive]\n", name, a.Type, size(a.Size))
	}
	return b.String()
}

// size says a byte count the way people read it.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+512)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// writeText writes a text/plain UTF-8 entity (its Content-* fields, a
// blank line and the body): 7bit when it can be, quoted-printable when
// it has other characters or long lines. A description names the part.
func writeText(out *bytes.Buffer, text, description string) {
	out.WriteString("Content-Type: text/plain; charset=\"utf-8\"\r\n")
	if description != "" {
		out.WriteString("Content-Description: " + mime.QEncoding.Encode("utf-8", description) + "\r\n")
	}
	if ascii([]byte(text)) && !longLines(text) {
		out.WriteString("Content-Transfer-Encoding: 7bit\r\n\r\n")
		out.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
		return
	}
	out.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	w := quotedprintable.NewWriter(out)
	w.Write([]byte(text)) // the writer turns each \n into CRLF
	w.Close()
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func longLines(s string) bool {
	for line := range strings.SplitSeq(s, "\n") {
		if len(line) > 900 {
			return true
		}
	}
	return false
}
