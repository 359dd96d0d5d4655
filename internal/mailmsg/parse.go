package mailmsg

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	_ "github.com/emersion/go-message/charset" // legacy charsets in headers and bodies
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Limits bound the work done on one message.
type Limits struct {
	MaxHeaderBytes  int // header block size (default 256 KiB)
	MaxHeaderFields int // header fields (default 1,000)
	MaxMIMEDepth    int // multipart nesting (default 32)
}

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 256 << 10
	}
	if l.MaxHeaderFields <= 0 {
		l.MaxHeaderFields = 1000
	}
	if l.MaxMIMEDepth <= 0 {
		l.MaxMIMEDepth = 32
	}
	return l
}

// ErrorKind classifies why a message cannot be accepted.
type ErrorKind int

// Error kinds; each maps to one SMTP reply.
const (
	Malformed      ErrorKind = iota + 1 // 554 5.6.0
	HeaderTooLarge                      // 552 5.3.4
)

// Error is a permanent refusal of a message's content. Msg is safe to show
// the sender.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Summary is what parley reads from a message. It is derived data: it can
// always be recomputed from the raw bytes.
type Summary struct {
	MessageID     string // without <>
	Synthesised   bool   // MessageID was made up by parley
	HeaderLen     int
	From          string // first From address, as written
	FromName      string
	Subject       string // decoded, valid UTF-8, no controls
	Date          *time.Time
	InReplyTo     string
	Refs          []string // ancestors for threading, oldest first, bounded
	ListIDs       []string // List-Id values (the <...> part)
	XLoop         []string
	AutoSubmitted string // lower case, "" when absent
	Precedence    string // lower case
	ContentKey    []byte
	MIME          MIMEShape
}

// Parent is the id this message replies to, "" for a thread starter.
func (s *Summary) Parent() string {
	if len(s.Refs) == 0 {
		return ""
	}
	return s.Refs[len(s.Refs)-1]
}

// Parse reads the summary of a canonical (CRLF) message. host is used to
// synthesise a Message-ID when the message has none; such an id depends
// only on the content, so a retried message gets the same one.
func Parse(raw []byte, host string, lim Limits) (*Summary, error) {
	lim = lim.withDefaults()
	hlen := HeaderLen(raw)
	if hlen > lim.MaxHeaderBytes {
		return nil, &Error{HeaderTooLarge, fmt.Sprintf("header block larger than %d bytes", lim.MaxHeaderBytes)}
	}
	if n := bytes.Count(raw[:hlen], []byte("\r\n")); n > lim.MaxHeaderFields*4 {
		return nil, &Error{HeaderTooLarge, "too many header lines"}
	}
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(withBlankLine(skipFromLine(raw[:hlen])))))
	if err != nil {
		return nil, &Error{Malformed, "malformed message header"}
	}
	if th.Len() > lim.MaxHeaderFields {
		return nil, &Error{HeaderTooLarge, fmt.Sprintf("more than %d header fields", lim.MaxHeaderFields)}
	}
	h := mail.Header{Header: messageHeader(th)}
	s := &Summary{HeaderLen: hlen}
	s.readAddresses(h)
	s.readText(h)
	ids := MsgIDs(h.Get("Message-Id"))
	if len(ids) == 0 {
		if id := bareID(h.Get("Message-Id")); id != "" {
			ids = []string{id}
		}
	}
	refs := MsgIDs(h.Get("References"))
	var irt []string
	if id := ReplyID(h.Get("In-Reply-To"), refs); id != "" {
		irt = []string{id}
	}
	msgidField := h.Get("Message-Id")
	if len(ids) > 0 {
		s.MessageID = ids[0]
	} else {
		// The made-up id depends on the content only, so a retry gets the
		// same one; the key is then computed as if the message had carried
		// it, which it will once intake records it in the bytes.
		s.MessageID = "parley-" + hex.EncodeToString(contentKey(raw, hlen, h, msgidField)[:16]) + "@" + host
		s.Synthesised = true
		msgidField = "<" + s.MessageID + ">"
	}
	s.ContentKey = contentKey(raw, hlen, h, msgidField)
	if len(irt) > 0 {
		s.InReplyTo = irt[0]
	}
	s.Refs = ThreadRefs(refs, irt, s.MessageID)
	if t, err := h.Date(); err == nil && !t.IsZero() {
		s.Date = &t
	}
	mime, err := checkMIME(th, raw[hlen:], lim)
	if err != nil {
		return nil, err
	}
	s.MIME = mime
	return s, nil
}

// skipFromLine passes over an mbox "From " envelope line that some
// software leaves at the top of a message; it is not a header field.
func skipFromLine(h []byte) []byte {
	if bytes.HasPrefix(h, []byte("From ")) {
		if i := bytes.Index(h, []byte("\r\n")); i >= 0 {
			return h[i+2:]
		}
	}
	return h
}

// withBlankLine makes sure the header block ends with an empty line, as
// textproto.ReadHeader expects (a message may be all header).
func withBlankLine(h []byte) []byte {
	if bytes.HasSuffix(h, []byte("\r\n\r\n")) || bytes.Equal(h, []byte("\r\n")) {
		return h
	}
	if bytes.HasSuffix(h, []byte("\r\n")) {
		return append(h[:len(h):len(h)], '\r', '\n')
	}
	return append(h[:len(h):len(h)], '\r', '\n', '\r', '\n')
}

var (
	angleAddr = regexp.MustCompile(`<([^<>\s@]+@[^<>\s@]+)>`)
	bareAddr  = regexp.MustCompile(`[^<>\s@,;:"]+@[^<>\s@,;:"]+`)
)

// readAddresses takes the first From address, falling back to a lenient
// scan when the strict parser gives up on the whole field. The scan takes
// an address in angle brackets wherever it stands before a bare one: a
// display name can hide something address-like (an encoded word decoding
// to "x: victim@example.net"), and it must not become the sender.
func (s *Summary) readAddresses(h mail.Header) {
	if as, err := h.AddressList("From"); err == nil && len(as) > 0 {
		s.From, s.FromName = clean(as[0].Address, 320), clean(Undeclared8bit(as[0].Name), 200)
		return
	}
	v := h.Get("From")
	if m := angleAddr.FindStringSubmatch(v); m != nil {
		s.From = clean(m[1], 320)
	} else if m := bareAddr.FindString(v); m != "" {
		s.From = clean(m, 320)
	}
}

func (s *Summary) readText(h mail.Header) {
	subj, err := h.Subject()
	if err != nil {
		subj = h.Get("Subject") // undecodable charset: keep the raw words
	}
	s.Subject = clean(Undeclared8bit(subj), 1000)
	for _, v := range h.Values("List-Id") {
		if ids := MsgIDs(v); len(ids) > 0 {
			s.ListIDs = append(s.ListIDs, strings.ToLower(ids[0]))
		}
	}
	for _, v := range h.Values("X-Loop") {
		s.XLoop = append(s.XLoop, strings.ToLower(strings.TrimSpace(v)))
	}
	s.AutoSubmitted = strings.ToLower(strings.TrimSpace(firstToken(h.Get("Auto-Submitted"))))
	s.Precedence = strings.ToLower(strings.TrimSpace(h.Get("Precedence")))
}

func firstToken(v string) string {
	if i := strings.IndexAny(v, ";( \t"); i >= 0 {
		return v[:i]
	}
	return v
}

// Clean makes header text safe for a text column, for display and for a
// header we write: valid UTF-8, no NUL, CR, LF or other controls (turned
// into spaces), trimmed, and at most max characters.
func Clean(s string, max int) string { return clean(s, max) }

func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max])
	}
	return s
}

// contentKey identifies "the same post": the body and the author-set
// fields, not the Received trail that differs between two deliveries of
// one message.
func contentKey(raw []byte, hlen int, h mail.Header, msgid string) []byte {
	k := sha256.New()
	fmt.Fprintf(k, "Message-Id:%s\x00", msgid)
	for _, f := range []string{"From", "Date", "Subject", "In-Reply-To", "References"} {
		fmt.Fprintf(k, "%s:%s\x00", f, h.Get(f))
	}
	k.Write(raw[hlen:])
	return k.Sum(nil)
}
