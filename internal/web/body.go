package web

import (
	"html"
	"html/template"
	"regexp"
	"strings"

	"github.com/parley-list/parley/internal/mailmsg"
)

// body is a post's text as a page shows it.
type body struct {
	Blocks      []block
	Attachments []mailmsg.Attachment
	Truncated   bool
	Link        string // the post's permalink, under which its attachments are numbered
}

// block is a run of lines: the post's own, or quoted ones (">"), which a
// page folds away when there are many.
type block struct {
	Quoted bool
	Lines  int
	HTML   template.HTML // escaped text, links marked up
}

// foldQuotes is how many quoted lines in a row a page folds.
const foldQuotes = 4

// renderBody renders what a person reads in a post: its text parts
// (mailmsg.Readable: decoded, in UTF-8, an HTML-only post as the text it
// holds), with quoted runs set apart and links made clickable. HTML from a
// post is never passed on as HTML: showing the text keeps scripts,
// styles, forms, tracking images and look-alike links out of the page, a
// sanitiser's whole attack surface, for the price of the sender's
// formatting, which list archives have always dropped.
func renderBody(raw []byte, link string) *body {
	rd := mailmsg.Readable(raw)
	b := &body{Attachments: rd.Attachments, Truncated: rd.Truncated, Link: link}
	lines := strings.Split(strings.TrimRight(rd.Text, "\n"), "\n")
	for start := 0; start < len(lines); {
		quoted := isQuote(lines[start])
		end := start
		for end < len(lines) && isQuote(lines[end]) == quoted {
			end++
		}
		b.Blocks = append(b.Blocks, block{Quoted: quoted, Lines: end - start, HTML: linkify(strings.Join(lines[start:end], "\n"))})
		start = end
	}
	return b
}

func isQuote(line string) bool { return strings.HasPrefix(line, ">") }

// Fold reports whether a block is folded away on the page.
func (b block) Fold() bool { return b.Quoted && b.Lines >= foldQuotes }

// urlPattern finds the http(s) links in text. The match stops at white
// space, quotes and angle brackets, and trailing punctuation is left out.
var urlPattern = regexp.MustCompile(`https?://[^\s<>"'\x60]+[^\s<>"'\x60.,;:!?)\]]`)

// linkify escapes text and makes its http(s) URLs links. Each piece is
// escaped on its own, so nothing in the text can open a tag or attribute;
// the links carry rel=nofollow noopener, and leave the page's origin only
// when followed.
func linkify(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range urlPattern.FindAllStringIndex(text, -1) {
		b.WriteString(html.EscapeString(text[last:m[0]]))
		u := text[m[0]:m[1]]
		b.WriteString(`<a href="` + html.EscapeString(u) + `" rel="nofollow noopener noreferrer">` + html.EscapeString(u) + `</a>`)
		last = m[1]
	}
	b.WriteString(html.EscapeString(text[last:]))
	return template.HTML(b.String())
}
