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
	if g, w := wire(t, got), wire(t, want); g != w {
		t.Errorf("decoded meta differs from computed:\n got %s\nwant %s", g, w)
	}
	env, err := Decode(enc, false)
	if err != nil {
		t.Fatalf("Decode envelope only: %v", err)
	}
	if g, w := wire(t, env), wire(t, Meta{Envelope: want.Envelope}); g != w {
		t.Errorf("envelope-only decode differs:\n got %s\nwant %s", g, w)
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
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(b, true)
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
