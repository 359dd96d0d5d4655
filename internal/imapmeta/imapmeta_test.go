package imapmeta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}

var samples = map[string]string{
	"plain":         "From: A <a@example.org>\nTo: l@example.org\nSubject: hi\nDate: Mon, 2 Jan 2006 15:04:05 -0700\nMessage-ID: <1@x>\n\nbody\n",
	"alternative":   "From: a@example.org\nSubject: alt\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain\n--b\nContent-Type: text/html; charset=utf-8\n\n<p>html</p>\n--b--\n",
	"no-boundary":   "Subject: broken\nContent-Type: multipart/mixed; boundary=never\n\nno parts at all\n",
	"rfc822":        "Subject: fwd\nContent-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\nsee below\n--o\nContent-Type: message/rfc822\n\nFrom: b@example.org\nSubject: inner\nContent-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: text/plain\n\ninner text\n--i\nContent-Type: application/pdf; name=x.pdf\nContent-Disposition: attachment; filename=x.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--i--\n--o--\n",
	"rfc822-empty":  "Subject: fwd\nContent-Type: message/rfc822\n\n",
	"no-header-end": "Subject: only a header",
}

// wire renders meta in a form that compares structurally (the concrete
// types behind the BodyStructure interface included). Bytes that are not
// UTF-8 become U+FFFD, as they do in the stored form.
func wire(t *testing.T, m Meta) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(v)
	return string(b)
}

func roundTrip(t *testing.T, raw []byte) {
	t.Helper()
	enc, err := Encode(raw)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := Decode(enc, true)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := Compute(raw)
	wantEnv := imapserver.AppendEnvelope(nil, want.Envelope)
	if !bytes.Equal(got.EnvelopeWire, wantEnv) || got.Envelope != nil {
		t.Errorf("decoded envelope differs from computed:\n got %q (decoded %v)\nwant %q", got.EnvelopeWire, got.Envelope, wantEnv)
	}
	if g, w := wire(t, Meta{BodyStructure: got.BodyStructure}), wire(t, Meta{BodyStructure: want.BodyStructure}); g != w {
		t.Errorf("decoded body structure differs from computed:\n got %s\nwant %s", g, w)
	}
	env, err := Decode(enc, false)
	if err != nil {
		t.Fatalf("Decode envelope only: %v", err)
	}
	if !bytes.Equal(env.EnvelopeWire, wantEnv) || env.BodyStructure != nil {
		t.Errorf("envelope-only decode differs:\n got %q, %v\nwant %q", env.EnvelopeWire, env.BodyStructure, wantEnv)
	}
}

// TestDecodeVersion2: what version 2 stored (the envelope in its binary
// form) still decodes, to the envelope Compute gives.
func TestDecodeVersion2(t *testing.T) {
	for name, msg := range samples {
		raw := crlf(msg)
		cur, err := Encode(raw)
		if err != nil {
			t.Fatal(err)
		}
		n, k := binary.Uvarint(cur[1:])
		env := appendEnvelopeV2(nil, Compute(raw).Envelope)
		old := append(binary.AppendUvarint([]byte{MinVersion}, uint64(len(env))), env...)
		old = append(old, cur[1+k+int(n):]...)
		got, err := Decode(old, true)
		if err != nil {
			t.Fatalf("%s: Decode(v2): %v", name, err)
		}
		if g, w := wire(t, got), wire(t, Compute(raw)); g != w {
			t.Errorf("%s: v2 decodes to\n%s\nwant\n%s", name, g, w)
		}
	}
}

// TestCheckWire: the stored envelope is written to clients as it is, so
// only a well-formed list passes; nothing in it may end the response.
func TestCheckWire(t *testing.T) {
	good := map[string][]byte{
		"plain": imapserver.AppendEnvelope(nil, Compute(crlf(samples["plain"])).Envelope),
		"utf8":  imapserver.AppendEnvelope(nil, &imap.Envelope{Subject: "x", From: []imap.Address{{Mailbox: "jörg\r\n)", Host: "example.org"}}}),
		"empty": imapserver.AppendEnvelope(nil, &imap.Envelope{}),
	}
	for name, b := range good {
		if err := checkWire(b); err != nil {
			t.Errorf("%s: checkWire(%q) = %v, want nil", name, b, err)
		}
	}
	bad := []string{
		"", "(", ")", "()()", "(NIL) ", "NIL",
		"(\"a\"\r\n* 1 EXPUNGE)", // a line end outside a literal
		"(\"a\nb\")", "(\"\xff\")", "(\xff)", "(\"open)",
		"({5}\r\nabc)", "({x}\r\nabc)", "({3}\nabc)", "({3}", "({99999999999}\r\n)",
		"((NIL)", "(NIL))", "(\\)", "(\"a\" NIL",
	}
	for _, b := range bad {
		if err := checkWire([]byte(b)); err == nil {
			t.Errorf("checkWire(%q) = nil, want an error", b)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for name, msg := range samples {
		t.Run(name, func(t *testing.T) { roundTrip(t, crlf(msg)) })
	}
}

// TestRoundTripCorpora round-trips every message (*.eml) of the
// repository's corpora under testdata/ (real bounces, our own thread and
// MIME cases; see testdata/README.md). They are part of the repository: a
// missing or empty corpus fails the test.
func TestRoundTripCorpora(t *testing.T) {
	const root = "../../testdata"
	count := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || filepath.Ext(path) != ".eml" {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		count[strings.SplitN(rel, "/", 2)[0]]++
		t.Run(rel, func(t *testing.T) { roundTrip(t, crlf(string(raw))) })
		return nil
	})
	if err != nil {
		t.Fatalf("reading the corpora: %v", err)
	}
	for _, name := range []string{"bounces", "threads", "mime"} {
		if count[name] == 0 {
			t.Fatalf("corpus %s: no messages under %s", name, filepath.Join(root, name))
		}
	}
}

func TestSanitize(t *testing.T) {
	m := Compute(crlf(samples["no-boundary"]))
	b, _ := json.Marshal(m.BodyStructure)
	if got, want := string(b), `"Type":"text","Subtype":"plain"`; !strings.Contains(got, want) {
		t.Errorf("multipart without parts: got %s, want a text/plain leaf (%s)", got, want)
	}
	m = Compute(crlf(samples["rfc822-empty"]))
	b, _ = json.Marshal(m.BodyStructure)
	if !strings.Contains(string(b), `"MessageRFC822":{`) || strings.Contains(string(b), `"BodyStructure":null`) {
		t.Errorf("empty message/rfc822: got %s, want an inner body structure", b)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := Encode(crlf(samples["rfc822"]))
	if err != nil {
		t.Fatal(err)
	}
	n, k := binary.Uvarint(good[1:])
	head, env, parts := good[:1+k], good[1+k:1+k+int(n)], good[1+k+int(n):]
	withParts := func(f func([]node) []node) []byte {
		var ps []node
		if err := json.Unmarshal(parts, &ps); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(f(ps))
		return append(append(append([]byte{}, head...), env...), b...)
	}
	cases := map[string][]byte{
		"empty":            nil,
		"other version":    append([]byte{Version + 1}, good[1:]...),
		"envelope cut":     append(append([]byte{}, head...), env[:len(env)/2]...),
		"envelope garbage": append(append(append([]byte{}, head...), bytes.Repeat([]byte{0xff}, len(env))...), parts...),
		"parts not json":   append(append(append([]byte{}, head...), env...), '{'),
		"truncated":        withParts(func(ps []node) []node { return ps[:len(ps)-1] }),
		"extra part":       withParts(func(ps []node) []node { return append(ps, ps[len(ps)-1]) }),
		"empty node":       withParts(func(ps []node) []node { ps[0] = node{N: ps[0].N}; return ps }),
		"no parts":         withParts(func(ps []node) []node { return nil }),
		"huge count":       withParts(func(ps []node) []node { ps[0].N = 1 << 30; return ps }),
	}
	for name, b := range cases {
		if _, err := Decode(b, true); err == nil {
			t.Errorf("%s: Decode accepted %q", name, b)
		}
	}
}

// FuzzDecode: no stored form, however damaged, makes Decode panic.
func FuzzDecode(f *testing.F) {
	for _, msg := range samples {
		b, _ := Encode(crlf(msg))
		f.Add(b)
		env := appendEnvelopeV2(nil, Compute(crlf(msg)).Envelope)
		f.Add(append(binary.AppendUvarint([]byte{MinVersion}, uint64(len(env))), env...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := Decode(b, true); err == nil && m.EnvelopeWire != nil && checkWire(m.EnvelopeWire) != nil {
			t.Fatalf("Decode passed an envelope checkWire refuses: %q", m.EnvelopeWire)
		}
		Decode(b, false)
	})
}

// FuzzEncode: any message bytes encode, and decode to what Compute gives.
func FuzzEncode(f *testing.F) {
	for _, msg := range samples {
		f.Add(crlf(msg))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !bytes.Contains(raw, []byte("\r\n")) {
			raw = crlf(string(raw))
		}
		roundTrip(t, raw)
	})
}
