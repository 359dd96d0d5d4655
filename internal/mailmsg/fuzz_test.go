package mailmsg

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzMsgIDs: the References parser never panics, returns only
// well-formed ids (no brackets, no white space, bounded, valid UTF-8, no
// duplicates), and never more ids than '<' in the input; ThreadRefs keeps
// at most MaxRefs and never the message itself.
func FuzzMsgIDs(f *testing.F) {
	for _, s := range []string{"<a@b> <c@d>", "<1@x> broken <2@x>", "<<>>", "<a@b", "<yes>", "<a b@c> <ok@x>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := MsgIDs(s)
		if len(ids) > strings.Count(s, "<") {
			t.Fatalf("MsgIDs(%q) = %d ids from %d '<'", s, len(ids), strings.Count(s, "<"))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || len(id) > maxIDLen || strings.ContainsAny(id, "<> \t\r\n") || !utf8.ValidString(id) || seen[id] {
				t.Fatalf("MsgIDs(%q) returned bad id %q", s, id)
			}
			seen[id] = true
		}
		self := "self@x"
		if len(ids) > 0 {
			self = ids[0]
		}
		refs := ThreadRefs(ids, ids, self)
		if len(refs) > MaxRefs || slices.Contains(refs, self) {
			t.Fatalf("ThreadRefs(%q) = %q", ids, refs)
		}
	})
}

// FuzzParse: any byte string either parses to a well-formed summary or is
// refused with a *Error; canonicalising is idempotent.
func FuzzParse(f *testing.F) {
	f.Add([]byte("From: a@b.c\r\nMessage-ID: <x@y>\r\nReferences: <p@q>\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n"))
	f.Add([]byte("Subject: =?x-unknown?q?abc?=\r\nFrom: \"bad <x\r\n\r\n"))
	f.Add([]byte("\n.\n\r.\r\r\n.\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw := Canonicalize(data)
		if again := Canonicalize(raw); !bytes.Equal(again, raw) {
			t.Fatalf("Canonicalize not idempotent on %q", data)
		}
		s, err := Parse(raw, "h.example", Limits{MaxMIMEDepth: 8})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse error %T %v is not *Error", err, err)
			}
			return
		}
		if s.MessageID == "" || s.HeaderLen > len(raw) || len(s.Refs) > MaxRefs || !utf8.ValidString(s.Subject) ||
			strings.ContainsAny(s.Subject+s.From+s.FromName, "\x00\r\n") || len(s.ContentKey) != 32 {
			t.Fatalf("Parse(%q) = bad summary %+v", data, s)
		}
	})
}

// FuzzBaseSubject: reducing a subject twice changes nothing more, and the
// result is never longer than the input.
func FuzzBaseSubject(f *testing.F) {
	for _, s := range []string{"Re: [dev] Fwd: x", "[a][b]", "re[12]: Re: ", "AW: SV: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		b, _ := BaseSubject(s)
		if b2, _ := BaseSubject(b); b2 != b {
			t.Fatalf("BaseSubject(%q) = %q but BaseSubject(%q) = %q", s, b, b, b2)
		}
		if len(b) > len(s)*3+3 {
			t.Fatalf("BaseSubject(%q) = %q grew", s, b)
		}
	})
}

// FuzzReplyID: the parent is "" or one of the field's own <...> tokens
// with an '@', and it never panics or runs away on nesting.
func FuzzReplyID(f *testing.F) {
	for _, s := range []string{`Message from T <t@x> of "d." <i@x>`, `<i@x> (from T <t@x>)`, `"\"(" <a@b> ((( <c@d>`, "<yes>"} {
		f.Add(s, "a@b")
	}
	f.Fuzz(func(t *testing.T, v, ref string) {
		id := ReplyID(v, []string{ref})
		if id == "" {
			return
		}
		if !strings.Contains(id, "@") || !strings.Contains(v, "<"+id+">") || !slices.Contains(MsgIDs(v), id) {
			t.Fatalf("ReplyID(%q) = %q, not an id of the field", v, id)
		}
	})
}

// FuzzSearchText: any message gives valid UTF-8 without NUL, within the
// bound, and never panics or runs away on nesting.
func FuzzSearchText(f *testing.F) {
	f.Add([]byte("Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n58TF\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/html\r\n\r\n<script><style></script>&amp;&#0;\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := SearchText(raw)
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || len(s) > 4*MaxSearchText {
			t.Fatalf("SearchText(%q) = %q", raw, s)
		}
	})
}

// FuzzReadable: any message gives valid UTF-8 text within the bound and
// a bounded list of attachments, without panicking or running away on
// nesting.
func FuzzReadable(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--c--\r\n--b\r\nContent-Type: application/pdf; name==?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\ncaf\xe9\r\n"))
	f.Add([]byte("Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n\r\nsigned\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n"))
	f.Add([]byte("Content-Type: text/plain; format=flowed; delsp=yes\r\n\r\n> quoted \r\n>> deeper \r\n text \r\n-- \r\nsig\r\n"))
	f.Add([]byte("Content-Type: text/html; charset=utf-8\r\n\r\n<p>one<blockquote>two<br>three</blockquote><script>x</script>\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := Readable(raw)
		if !utf8.ValidString(r.Text) || len(r.Text) > MaxReadable+1 || len(r.Attachments) > maxTextWalk {
			t.Fatalf("Readable(%q) = %d bytes of text (valid %v), %d attachments", raw, len(r.Text), utf8.ValidString(r.Text), len(r.Attachments))
		}
		for _, a := range r.Attachments {
			if !utf8.ValidString(a.Name) || strings.ContainsAny(a.Name, "\r\n") || a.Size < 0 {
				t.Fatalf("attachment %+v", a)
			}
		}
		if len(r.Attachments) > 0 {
			a, data, ok := AttachmentData(raw, 1)
			if !ok || a != r.Attachments[0] || int64(len(data)) != a.Size {
				t.Fatalf("AttachmentData(1) = %+v, %d bytes, %v; Readable listed %+v", a, len(data), ok, r.Attachments[0])
			}
		}
	})
}
