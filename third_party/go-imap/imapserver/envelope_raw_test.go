package imapserver_test

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// envelopeSession answers FETCH ENVELOPE with a stored envelope, written
// with WriteEnvelopeRaw.
type envelopeSession struct {
	imapserver.Session
	raw []byte
}

func (s *envelopeSession) Fetch(w *imapserver.FetchWriter, _ imap.NumSet, _ *imap.FetchOptions) error {
	m := w.CreateMessage(1)
	m.WriteUID(1) // as the memory server does
	m.WriteEnvelopeRaw(s.raw)
	return m.Close()
}

// TestEnvelopeRaw: an envelope encoded once by AppendEnvelope and written
// with WriteEnvelopeRaw is byte for byte what WriteEnvelope writes; a
// string that is not ASCII is a literal, valid on any connection.
func TestEnvelopeRaw(t *testing.T) {
	const header = "From: a@example.org\r\nSubject: hello\r\nTo: b@example.org\r\n\r\n"
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(header)))
	if err != nil {
		t.Fatal(err)
	}
	raw := imapserver.AppendEnvelope([]byte("kept"), imapserver.ExtractEnvelope(h))
	if !bytes.HasPrefix(raw, []byte("kept(")) {
		t.Fatalf("AppendEnvelope did not append to dst: %q", raw)
	}
	raw = raw[len("kept"):]

	fetch := func(wrap func(imapserver.Session) imapserver.Session) string {
		r := startRaw(t, wrap)
		r.cmd("a", "LOGIN u p")
		r.cmd("b", "SELECT INBOX")
		return r.cmd("c", "FETCH 1 ENVELOPE")
	}
	want := fetch(nil)
	got := fetch(func(s imapserver.Session) imapserver.Session { return &envelopeSession{Session: s, raw: raw} })
	if got != want {
		t.Errorf("FETCH with WriteEnvelopeRaw:\n%s\nwith WriteEnvelope:\n%s", got, want)
	}

	utf8 := imapserver.AppendEnvelope(nil, &imap.Envelope{From: []imap.Address{{Mailbox: "jörg", Host: "example.org"}}})
	if !bytes.Contains(utf8, []byte("{5}\r\njörg")) {
		t.Errorf("a UTF-8 mailbox is not a literal: %q", utf8)
	}
}
