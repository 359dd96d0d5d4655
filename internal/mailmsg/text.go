package mailmsg

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"
	"golang.org/x/text/encoding/charmap"
)

// Bounds of SearchText.
const (
	// MaxSearchText bounds the text kept of one message.
	MaxSearchText = 512 << 10
	// maxTextWalk bounds the parts SearchText looks at.
	maxTextWalk = 200
	// maxTextNesting bounds multiparts and attached messages inside
	// each other.
	maxTextNesting = 16
)

// SearchText is what a person reads in a message, for searching it (IMAP
// SEARCH BODY and TEXT): the text of its text/plain parts, transfer
// encodings undone and charsets converted to UTF-8, or, when it has no
// text/plain part at all, the text of its HTML parts with the markup
// removed; attached messages count as text. It is case-folded
// (FoldSearch), so matching is case-insensitive in every script whatever
// the database's locale, and bounded (MaxSearchText). Undeclared 8-bit
// text that is not UTF-8 is read as windows-1252. The walk keeps an
// explicit stack: nothing recurses on the message.
func SearchText(raw []byte) string {
	var w textWalk
	w.walk(raw)
	t := w.plain.String()
	if strings.TrimSpace(t) == "" {
		t = w.html.String()
	}
	return FoldSearch(t)
}

// FoldSearch is the case folding SearchText applies, for needles too.
// NUL cannot be stored in a text column; it becomes a space.
func FoldSearch(s string) string {
	s = strings.ToLower(strings.ToValidUTF8(s, "\uFFFD"))
	return strings.ReplaceAll(s, "\x00", " ")
}

// textWalk collects the text of a message's parts.
type textWalk struct {
	plain, html strings.Builder
	parts       int
}

// open is one multipart being walked.
type open struct {
	mr *textproto.MultipartReader
}

func (w *textWalk) full() bool {
	return w.plain.Len()+w.html.Len() >= MaxSearchText || w.parts >= maxTextWalk
}

func (w *textWalk) walk(raw []byte) {
	br := bufio.NewReader(bytes.NewReader(raw))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return
	}
	var stack []open
	w.part(th, br, &stack)
	for len(stack) > 0 && !w.full() {
		p, err := stack[len(stack)-1].mr.NextPart()
		if err != nil {
			stack = stack[:len(stack)-1]
			continue
		}
		w.part(p.Header, p, &stack)
	}
}

// part takes one part: a multipart is pushed (within the nesting
// bound), an attached message is opened in place (a loop, so a chain of
// messages inside messages is walked without recursion, within the same
// bound), a text part is read.
func (w *textWalk) part(th textproto.Header, body io.Reader, stack *[]open) {
	for depth := len(*stack); ; depth++ {
		w.parts++
		h := message.Header{Header: th}
		t, params, err := h.ContentType()
		if err != nil {
			t, params = "text/plain", nil
		}
		switch {
		case strings.HasPrefix(t, "multipart/"):
			if params["boundary"] != "" && depth < maxTextNesting {
				*stack = append(*stack, open{mr: textproto.NewMultipartReader(body, params["boundary"])})
			}
		case (t == "message/rfc822" || t == "message/global") && depth < maxTextNesting:
			br := bufio.NewReader(decodedBody(h, body))
			inner, err := textproto.ReadHeader(br)
			if err != nil {
				return
			}
			th, body = inner, br
			continue
		case t == "text/plain" || t == "":
			w.plain.WriteString(readText(h, body))
			w.plain.WriteString("\n")
		case t == "text/html":
			w.html.WriteString(htmlText(readText(h, body)))
			w.html.WriteString("\n")
		}
		return
	}
}

// decodedBody undoes the part's transfer encoding.
func decodedBody(h message.Header, body io.Reader) io.Reader {
	e, err := message.New(h, body)
	if err != nil && e == nil {
		return body
	}
	return e.Body
}

// readText returns a text part as UTF-8: transfer encoding undone, the
// declared charset converted; text in an unknown or undeclared charset
// that is not UTF-8 is read as windows-1252, the usual guess for old mail.
func readText(h message.Header, body io.Reader) string {
	_, params, _ := h.ContentType()
	e, err := message.New(h, body)
	known := err == nil
	if e == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(e.Body, MaxSearchText))
	cs := strings.ToLower(params["charset"])
	if (known && cs != "" && cs != "us-ascii") || utf8.Valid(b) {
		return string(b)
	}
	if s, err := charmap.Windows1252.NewDecoder().Bytes(b); err == nil {
		return string(s)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// htmlText is the text an HTML part shows: tags dropped, entities
// decoded, script and style left out, blocks kept apart by spaces.
func htmlText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			if n := string(name); n == "script" || n == "style" {
				skip++
			}
			b.WriteByte(' ')
		case html.EndTagToken:
			name, _ := z.TagName()
			if n := string(name); (n == "script" || n == "style") && skip > 0 {
				skip--
			}
			b.WriteByte(' ')
		}
	}
}

// Undeclared8bit reads header text that is not valid UTF-8 (8-bit bytes
// without an encoded word, common in old archives) as windows-1252, the
// usual guess, instead of showing U+FFFD; valid UTF-8 is returned as it
// is.
func Undeclared8bit(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if d, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return d
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// HTMLLines is the text an HTML part shows, line by line, for reading
// commands in an HTML-only mail: tags dropped, entities decoded, script
// and style left out, a line break at each block (paragraph, div, br,
// list item, row, heading), and the lines inside a blockquote quoted
// ("> "), as a plain-text reply quotes them. The tokenizer keeps no
// stack of its own; the only state is two counters.
func HTMLLines(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip, quote := 0, 0
	newline := func() {
		b.WriteByte('\n')
		if quote > 0 {
			b.WriteString("> ")
		}
	}
	for {
		switch tt := z.Next(); tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.WriteString(strings.ReplaceAll(string(z.Text()), "\n", " "))
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			end := tt == html.EndTagToken
			switch n := string(name); {
			case n == "script" || n == "style":
				skip = max(0, skip+map[bool]int{false: 1, true: -1}[end])
			case n == "blockquote":
				quote = max(0, quote+map[bool]int{false: 1, true: -1}[end])
				newline()
			case htmlBlocks[n]:
				newline()
			default:
				b.WriteByte(' ')
			}
		}
	}
}

// htmlBlocks are the elements that start a line.
var htmlBlocks = map[string]bool{"p": true, "div": true, "br": true, "li": true, "tr": true, "ul": true, "ol": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "pre": true, "table": true, "hr": true}
