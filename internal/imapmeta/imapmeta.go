// Package imapmeta owns the IMAP view of one archived message that is
// computed once, when the message is archived, and stored beside it: its
// ENVELOPE and its sanitised BODYSTRUCTURE. Parsing a header and walking
// the MIME tree for every FETCH costs about 20 µs a message each; decoding
// the stored form costs a few, which is what makes a FETCH of a whole
// 100,000-message list take a fraction of a second.
//
// It is the only package besides imapd that imports go-imap, for the
// types and the library's own extraction (so what is stored is exactly
// what the server would otherwise compute on the fly). The stored form is
// parley's own: a version byte, the envelope as the server writes it
// (envelope.go), and the body structure as JSON, flattened into a list of
// parts in document order so that neither encoding nor decoding recurses.
// Body-structure strings that are not UTF-8 are stored as U+FFFD, which
// is also what a client can display.
package imapmeta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/mailmsg"
)

// Version is the stored form's version, its first byte. Decode reads
// MinVersion to Version; a reader that finds any other computes the data
// from the raw message instead.
const (
	Version    = 3
	MinVersion = 2 // the envelope in a binary form (envelope.go)
)

// Meta is what FETCH needs of a message besides its bytes. The envelope
// is either decoded (Envelope) or, from the current stored form, the
// bytes the server writes for it (EnvelopeWire, for
// imapserver.FetchResponseWriter.WriteEnvelopeRaw).
type Meta struct {
	Envelope      *imap.Envelope
	EnvelopeWire  []byte
	BodyStructure imap.BodyStructure
}

// node is one part of a flattened body structure. Exactly one of S and M
// is set; N parts that follow are its children (a multipart's parts, or
// the one body of a message/rfc822 part).
type node struct {
	S *imap.BodyStructureSinglePart `json:"s,omitempty"`
	M *imap.BodyStructureMultiPart  `json:"m,omitempty"`
	N int                           `json:"n,omitempty"`
}

// Compute derives the meta of a raw message (CRLF line ends).
func Compute(raw []byte) Meta {
	return Meta{
		Envelope:      Envelope(raw[:mailmsg.HeaderLen(raw)]),
		BodyStructure: Sanitize(imapserver.ExtractBodyStructure(bytes.NewReader(raw))),
	}
}

// Encode computes the meta of raw and returns its stored form.
func Encode(raw []byte) ([]byte, error) {
	m := Compute(raw)
	parts, err := json.Marshal(flatten(m.BodyStructure))
	if err != nil {
		return nil, err
	}
	env := imapserver.AppendEnvelope(nil, m.Envelope)
	b := binary.AppendUvarint([]byte{Version}, uint64(len(env)))
	b = append(append(b, env...), parts...)
	return b, nil
}

// errStale is returned for a stored form this code does not read.
var errStale = errors.New("imapmeta: stored form of another version")

// Decode reads a stored form, the body structure only when bodyStructure
// is set (else it is nil): FETCH ENVELOPE, which clients ask of every
// message, skips the JSON. Any error means the caller should compute the
// meta from the raw message instead.
func Decode(b []byte, bodyStructure bool) (Meta, error) {
	if len(b) == 0 || (b[0] != Version && b[0] != MinVersion) {
		return Meta{}, errStale
	}
	r := &reader{b: b[1:]}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return Meta{}, errTruncated
	}
	var m Meta
	var err error
	if b[0] == Version {
		m.EnvelopeWire, err = r.b[:n:n], checkWire(r.b[:n])
	} else {
		m.Envelope, err = decodeEnvelope(r.b[:n])
	}
	if err != nil {
		return Meta{}, err
	}
	if !bodyStructure {
		return m, nil
	}
	var parts []node
	if err := json.Unmarshal(r.b[n:], &parts); err != nil {
		return Meta{}, err
	}
	if m.BodyStructure, err = build(parts); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// Envelope parses the ENVELOPE from a header block.
func Envelope(header []byte) *imap.Envelope {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(header)))
	if err != nil {
		return &imap.Envelope{}
	}
	env := imapserver.ExtractEnvelope(h)
	// Undeclared 8-bit text (old archives) is read as windows-1252, as
	// the archive's own summary reads it, not shown as U+FFFD.
	env.Subject = mailmsg.Undeclared8bit(env.Subject)
	for _, as := range [][]imap.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		for i := range as {
			as[i].Name = mailmsg.Undeclared8bit(as[i].Name)
		}
	}
	return env
}

// flatten lists the parts of bs in document order, parents first.
func flatten(bs imap.BodyStructure) []node {
	var out []node
	stack := []imap.BodyStructure{bs}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch v := cur.(type) {
		case *imap.BodyStructureSinglePart:
			c := *v
			n := node{S: &c}
			if v.MessageRFC822 != nil {
				m := *v.MessageRFC822
				m.BodyStructure, c.MessageRFC822 = nil, &m
				n.N = 1
				stack = append(stack, v.MessageRFC822.BodyStructure)
			}
			out = append(out, n)
		case *imap.BodyStructureMultiPart:
			c := *v
			c.Children = nil
			out = append(out, node{M: &c, N: len(v.Children)})
			for i := len(v.Children) - 1; i >= 0; i-- {
				stack = append(stack, v.Children[i])
			}
		}
	}
	return out
}

var errShape = errors.New("imapmeta: stored body structure is malformed")

// build is flatten's inverse.
func build(nodes []node) (imap.BodyStructure, error) {
	type open struct {
		put  func(imap.BodyStructure)
		left int
	}
	var root imap.BodyStructure
	stack := []*open{{put: func(b imap.BodyStructure) { root = b }, left: 1}}
	for _, n := range nodes {
		if len(stack) == 0 || n.N < 0 || n.N > len(nodes) {
			return nil, errShape
		}
		top := stack[len(stack)-1]
		var frame *open
		switch {
		case n.S != nil:
			top.put(n.S)
			if n.N > 0 {
				if n.S.MessageRFC822 == nil || n.N != 1 {
					return nil, errShape
				}
				msg := n.S.MessageRFC822
				frame = &open{put: func(b imap.BodyStructure) { msg.BodyStructure = b }, left: 1}
			}
		case n.M != nil:
			top.put(n.M)
			mp := n.M
			mp.Children = make([]imap.BodyStructure, 0, n.N)
			frame = &open{put: func(b imap.BodyStructure) { mp.Children = append(mp.Children, b) }, left: n.N}
		default:
			return nil, errShape
		}
		if top.left--; top.left == 0 {
			stack = stack[:len(stack)-1]
		}
		if frame != nil && frame.left > 0 {
			stack = append(stack, frame)
		}
	}
	if len(stack) != 0 {
		return nil, errShape
	}
	return Sanitize(root), nil
}

// Sanitize makes a body structure safe for the library to write:
// multiparts without children (a boundary that never occurs) become an
// empty text/plain leaf, text parts get a line count, and every part gets
// the extension data BODYSTRUCTURE writes. The walk is iterative over an
// explicit stack: nothing recurses on user input.
func Sanitize(bs imap.BodyStructure) imap.BodyStructure {
	root := bs
	stack := []*imap.BodyStructure{&root}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch v := (*p).(type) {
		case *imap.BodyStructureSinglePart:
			fixLeaf(v)
			if v.MessageRFC822 != nil {
				stack = append(stack, &v.MessageRFC822.BodyStructure)
			}
		case *imap.BodyStructureMultiPart:
			if len(v.Children) == 0 {
				*p = emptyLeaf()
				continue
			}
			if v.Extended == nil {
				v.Extended = &imap.BodyStructureMultiPartExt{}
			}
			for i := range v.Children {
				stack = append(stack, &v.Children[i])
			}
		default: // nil: a part the library could not describe
			*p = emptyLeaf()
		}
	}
	return root
}

func emptyLeaf() *imap.BodyStructureSinglePart {
	return &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain",
		Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit",
		Text: &imap.BodyStructureText{}, Extended: &imap.BodyStructureSinglePartExt{}}
}

// fixLeaf fills what the wire format requires of a leaf.
func fixLeaf(sp *imap.BodyStructureSinglePart) {
	if strings.EqualFold(sp.Type, "text") && sp.Text == nil && sp.MessageRFC822 == nil {
		sp.Text = &imap.BodyStructureText{}
	}
	if sp.Extended == nil {
		sp.Extended = &imap.BodyStructureSinglePartExt{}
	}
}
