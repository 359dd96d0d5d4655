package imapmeta

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Version 3 stores the envelope as the IMAP server writes it
// (imapserver.AppendEnvelope), so that FETCH ENVELOPE copies it out
// instead of decoding and encoding it again for every message; checkWire
// makes sure what is copied out cannot break the protocol around it.
//
// Version 2 stored it in a compact binary form of parley's own, still
// read (decodeEnvelope): strings are a uvarint length and the bytes; lists
// are a uvarint count plus one (0 is a nil list, which the library writes
// as NIL); the date is a flag byte, then the Unix seconds and the zone
// offset as varints.

var errWire = errors.New("imapmeta: stored envelope is not a well-formed IMAP list")

// checkWire accepts an IMAP list as AppendEnvelope writes it: printable
// ASCII, strings quoted or as literals ({n} CRLF and n bytes, which may
// be anything), parentheses balanced and the whole a single list. Line
// ends appear only after a literal's length, so nothing stored can end
// the FETCH response early or add one. It does not recurse. Every FETCH
// ENVELOPE runs it on every message, so the common bytes cost one table
// lookup each.
func checkWire(b []byte) error {
	if len(b) < 2 || b[0] != '(' {
		return errWire
	}
	depth, quoted := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch wireClass[c] {
		case wirePlain:
			continue
		case wireBad:
			return errWire
		}
		switch {
		case quoted && c == '\\':
			i++
		case quoted && c == '"':
			quoted = false
		case quoted:
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 || (depth == 0 && i != len(b)-1) {
				return errWire // unbalanced, or more after the list
			}
		case c == '\\':
			return errWire // only inside a quoted string
		case c == '{':
			n, next, ok := literalLen(b, i)
			if !ok || n > len(b)-next {
				return errWire
			}
			i = next + n - 1
		}
	}
	if depth != 0 || quoted {
		return errWire
	}
	return nil
}

// The byte classes checkWire tells apart.
const (
	wirePlain   = iota // printable, no meaning to the list's structure
	wireSpecial        // ( ) " { \
	wireBad            // control or 8-bit: only inside a literal
)

var wireClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c < 0x20 || c > 0x7e:
			t[c] = wireBad
		case c == '(' || c == ')' || c == '"' || c == '{' || c == '\\':
			t[c] = wireSpecial
		}
	}
	return t
}()

// literalLen reads "{n}\r\n" at b[i] and returns n and where the literal's
// bytes start.
func literalLen(b []byte, i int) (n, start int, ok bool) {
	j := i + 1
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		if n > 1<<24 {
			return 0, 0, false
		}
		n = n*10 + int(b[j]-'0')
	}
	if j == i+1 || j+2 >= len(b) || b[j] != '}' || b[j+1] != '\r' || b[j+2] != '\n' {
		return 0, 0, false
	}
	return n, j + 3, true
}

var errTruncated = errors.New("imapmeta: stored envelope is truncated")

// reader decodes the binary form; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errTruncated
	}
	r.b = nil
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a list length (0: nil), bounded by what is left to read:
// every element takes at least one byte.
func (r *reader) count() (n int, isNil bool) {
	v := r.uvarint()
	if v == 0 {
		return 0, true
	}
	if v-1 > uint64(len(r.b)) {
		r.fail()
		return 0, true
	}
	return int(v - 1), false
}

func (r *reader) addresses() []imap.Address {
	n, isNil := r.count()
	if isNil {
		return nil
	}
	as := make([]imap.Address, n)
	for i := range as {
		as[i] = imap.Address{Name: r.string(), Mailbox: r.string(), Host: r.string()}
	}
	return as
}

func decodeEnvelope(b []byte) (*imap.Envelope, error) {
	r := &reader{b: b}
	e := &imap.Envelope{}
	if len(r.b) == 0 {
		return nil, errTruncated
	}
	hasDate := r.b[0]
	r.b = r.b[1:]
	if hasDate == 1 {
		sec, off := r.varint(), r.varint()
		e.Date = time.Unix(sec, 0).In(time.FixedZone("", int(off)))
	}
	e.Subject = r.string()
	for _, as := range []*[]imap.Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		*as = r.addresses()
	}
	if n, isNil := r.count(); !isNil {
		e.InReplyTo = make([]string, n)
		for i := range e.InReplyTo {
			e.InReplyTo[i] = r.string()
		}
	}
	e.MessageID = r.string()
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("imapmeta: stored envelope has trailing bytes")
	}
	return e, r.err
}
