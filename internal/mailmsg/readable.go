package mailmsg

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// MaxReadable bounds the text Readable keeps of one message.
const MaxReadable = 256 << 10

// Reading is what a person reads in a message, for showing it as text
// (the plain digest, the digest summary): its text, and what else it
// carries, listed rather than shown.
type Reading struct {
	Text        string // UTF-8, LF line ends
	Attachments []Attachment
	Truncated   bool // Text was cut at MaxReadable
}

// Attachment is a part Readable lists instead of showing.
type Attachment struct {
	Name string // the part's file name, "" when it has none
	Type string // media type, e.g. application/pdf
	Size int64  // decoded bytes
}

// Readable returns a message's text: its text/plain parts (transfer
// encodings undone, charsets converted to UTF-8), or, for a
// multipart/alternative without one, its HTML part with the markup
// removed. Parts marked as attachments, and every part that is not text,
// are listed instead, with their names, types and sizes; so is an
// attached message. The walk keeps an explicit stack, as SearchText's
// does: nothing recurses on the message.
func Readable(raw []byte) Reading {
	var r reading
	if !r.walk(raw) {
		return Reading{}
	}
	text := strings.ReplaceAll(r.text.String(), "\r\n", "\n")
	return Reading{Text: strings.TrimRight(text, "\n") + "\n", Attachments: r.attached, Truncated: r.truncated}
}

// walk reads a message into r; false when its header is unreadable.
func (r *reading) walk(raw []byte) bool {
	br := bufio.NewReader(bytes.NewReader(raw))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return false
	}
	var stack []readFrame
	r.part(th, br, &stack, nil)
	for len(stack) > 0 && r.parts < maxTextWalk {
		top := &stack[len(stack)-1]
		p, err := top.mr.NextPart()
		if err != nil {
			r.close(top)
			stack = stack[:len(stack)-1]
			continue
		}
		r.part(p.Header, p, &stack, top.alt)
	}
	for i := len(stack) - 1; i >= 0; i-- {
		r.close(&stack[i])
	}
	return true
}

// reading is Readable's walk.
type reading struct {
	text      strings.Builder
	attached  []Attachment
	parts     int
	truncated bool
	want      int           // AttachmentData: the listed part to keep (from 1); 0 none
	data      *bytes.Buffer // its decoded bytes
}

// readFrame is one multipart being walked; alt is the alternative it
// belongs to, if any.
type readFrame struct {
	mr  *textproto.MultipartReader
	alt *alternative
	own bool // this frame is the multipart/alternative itself
}

// alternative is a multipart/alternative: the first text/plain part in
// it is its text; failing one, its first HTML part's.
type alternative struct {
	done bool
	html string
}

func (r *reading) close(f *readFrame) {
	if f.own && !f.alt.done && f.alt.html != "" {
		r.add(f.alt.html)
	}
}

func (r *reading) add(s string) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if r.text.Len() > 0 {
		r.text.WriteString("\n")
	}
	if room := MaxReadable - r.text.Len(); len(s) > room {
		s, r.truncated = strings.ToValidUTF8(s[:max(room, 0)], ""), true
	}
	r.text.WriteString(s)
}

// part takes one part: a multipart is pushed, a text part read (into the
// text, or its alternative), anything else listed.
func (r *reading) part(th textproto.Header, body io.Reader, stack *[]readFrame, alt *alternative) {
	r.parts++
	h := message.Header{Header: th}
	t, params, err := h.ContentType()
	if err != nil {
		t, params = "text/plain", nil
	}
	disp, dparams, _ := h.ContentDisposition()
	attachment := disp == "attachment"
	switch {
	case strings.HasPrefix(t, "multipart/") && params["boundary"] != "" && len(*stack) < maxTextNesting:
		f := readFrame{mr: textproto.NewMultipartReader(body, params["boundary"]), alt: alt}
		if t == "multipart/alternative" && alt == nil {
			f.alt, f.own = &alternative{}, true
		}
		*stack = append(*stack, f)
	case alt != nil && (t == "text/plain" || t == "text/html"):
		if alt.done {
			return
		}
		s := readText(h, body)
		if t == "text/plain" {
			alt.done = true
			r.add(s)
		} else if alt.html == "" {
			alt.html = strings.ToValidUTF8(strings.TrimSpace(htmlText(s)), "\uFFFD")
		}
	case (t == "text/plain" || t == "") && !attachment:
		if r.text.Len() >= MaxReadable {
			r.truncated = true
			return
		}
		s := readText(h, body)
		if strings.EqualFold(params["format"], "flowed") {
			s = Unflow(s, strings.EqualFold(params["delsp"], "yes"))
		}
		r.add(s)
	case t == "text/html" && !attachment:
		// An HTML-only post (or part): its text, line by line.
		if r.text.Len() >= MaxReadable {
			r.truncated = true
			return
		}
		r.add(strings.ToValidUTF8(strings.TrimSpace(HTMLLines(readText(h, body))), "\uFFFD"))
	case alt != nil:
		// An alternative's other parts (inline images of an HTML
		// version) are not something the reader attached.
	default:
		r.list(h, t, params, dparams, body)
	}
}

// list records a part as an attachment.
func (r *reading) list(h message.Header, t string, params, dparams map[string]string, body io.Reader) {
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if name != "" {
		if d, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
			name = d
		}
		name = clean(name, 200)
	}
	var sink io.Writer = io.Discard
	if r.want == len(r.attached)+1 {
		r.data = &bytes.Buffer{}
		sink = r.data
	}
	n, _ := io.Copy(sink, io.LimitReader(decodedBody(h, body), 1<<30))
	r.attached = append(r.attached, Attachment{Name: name, Type: t, Size: n})
}

// AttachmentData returns the n-th part Readable lists (from 1), decoded,
// with what Readable says of it; ok is false when there is none.
func AttachmentData(raw []byte, n int) (a Attachment, data []byte, ok bool) {
	r := reading{want: n}
	r.walk(raw)
	if n < 1 || n > len(r.attached) || r.data == nil {
		return Attachment{}, nil, false
	}
	return r.attached[n-1], r.data.Bytes(), true
}
