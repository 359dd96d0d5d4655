package imapmeta

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The envelope is stored in a compact binary form of parley's own, not
// JSON: FETCH ENVELOPE is asked of every message of a mailbox at once,
// and decoding this is several times cheaper than decoding JSON. Strings
// are a uvarint length and the bytes; lists are a uvarint count plus one
// (0 is a nil list, which the library writes as NIL); the date is a flag
// byte, then the Unix seconds and the zone offset as varints.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAddresses(b []byte, as []imap.Address) []byte {
	if as == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(as))+1)
	for _, a := range as {
		b = appendString(appendString(appendString(b, a.Name), a.Mailbox), a.Host)
	}
	return b
}

func appendEnvelope(b []byte, e *imap.Envelope) []byte {
	if e.Date.IsZero() {
		b = append(b, 0)
	} else {
		_, off := e.Date.Zone()
		b = append(b, 1)
		b = binary.AppendVarint(b, e.Date.Unix())
		b = binary.AppendVarint(b, int64(off))
	}
	b = appendString(b, e.Subject)
	for _, as := range [][]imap.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b = appendAddresses(b, as)
	}
	if e.InReplyTo == nil {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(e.InReplyTo))+1)
		for _, s := range e.InReplyTo {
			b = appendString(b, s)
		}
	}
	return appendString(b, e.MessageID)
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
