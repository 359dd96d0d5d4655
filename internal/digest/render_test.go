package digest

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailmsg"
)

var update = flag.Bool("update", false, "rewrite golden files")

// edition is an issue of four posts: a question, a reply in UTF-8
// quoted-printable that quotes it and holds a line like an RFC 1153
// separator, a post with an attachment and undeclared 8-bit text, and one
// too large for any digest.
func edition(format string) Edition {
	l := lists.List{Address: "dev@lists.example.org", LocalPart: "dev", Domain: "lists.example.org",
		PostPolicy: lists.PostMembers, UIDValidity: 1795767502,
		Digest: lists.Digest{TZ: "UTC", Formats: []string{"mime", "plain", "summary"}}}
	at := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	is := Issue{Volume: 3, Number: 12, First: 10, Last: 13, Posts: 4, Listed: []int64{13}, CutAt: at}
	post := func(article, thread int64, from, name, subject, raw string) archive.Article {
		sent := at.Add(-time.Duration(14-article) * time.Hour)
		return archive.Article{Entry: archive.Entry{Article: article, ThreadID: thread, MessageID: strings.TrimSuffix(from, "@example.org") + "@example.org",
			From: from, FromName: name, Subject: subject, SentAt: &sent, ReceivedAt: sent, Size: int64(len(raw))},
			Raw: mailmsg.Canonicalize([]byte(raw))}
	}
	posts := []archive.Article{
		post(10, 10, "alice@example.org", "Alice", "Build fails on arm64",
			"From: Alice <alice@example.org>\nSubject: Build fails on arm64\nMessage-ID: <alice@example.org>\n\n"+
				"The build fails on arm64 since yesterday:\n\n  undefined: atomic.Int128\n\nAnyone else?\n-- \nAlice\n"),
		post(11, 10, "bob@example.org", "Bøb", "Re: Build fails on arm64",
			"From: =?utf-8?q?B=C3=B8b?= <bob@example.org>\nSubject: Re: Build fails on arm64\nMessage-ID: <bob@example.org>\n"+
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"+
				"On Monday Alice wrote:\n> The build fails on arm64 since yesterday\n\nYes: the fix is in main. Gr=C3=BC=C3=9Fe.\n"+
				"------------------------------\nThat line is not a separator.\n"),
		post(12, 12, "carol@example.org", "Carol", "Release notes draft",
			"From: Carol <carol@example.org>\nSubject: Release notes draft\nMessage-ID: <carol@example.org>\n"+
				"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"+
				"Draft attached; caf\xc3\xa9 at nine.\n--b\nContent-Type: application/pdf; name=notes.pdf\n"+
				"Content-Disposition: attachment; filename=notes.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n"),
		{Entry: archive.Entry{Article: 13, ThreadID: 13, MessageID: "dave@example.org", From: "dave@example.org",
			Subject: "Core dump", ReceivedAt: at, Size: 50 << 20}},
	}
	return Edition{List: l, Issue: is, Posts: posts, ArchiveURL: "imap://lists.example.org",
		Variant: Variant{Format: format, Spans: []Span{{10, 14}}}}
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, format := range []string{FormatMIME, FormatPlain, FormatSummary} {
		got, err := Render(edition(format))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Render(edition(format))
		if !bytes.Equal(got, again) {
			t.Errorf("%s: two renderings of one edition differ", format)
		}
		path := filepath.Join("testdata", format+".golden")
		if *update {
			os.WriteFile(path, got, 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if !bytes.Equal(got, want) {
			os.WriteFile(path+".got", got, 0o644)
			t.Errorf("%s differs; see %s.got", path, path)
		}
	}
}

// TestMIMEDigest reads the MIME digest as a client would: a
// multipart/mixed whose first part is the contents and whose second is a
// multipart/digest of message/rfc822 parts, each byte for byte the
// archived post; the post too large for a digest is only in the contents.
func TestMIMEDigest(t *testing.T) {
	t.Parallel()
	e := edition(FormatMIME)
	raw, err := Render(e)
	if err != nil {
		t.Fatal(err)
	}
	m, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, _ := m.Header.ContentType(); typ != "multipart/mixed" {
		t.Fatalf("top type %q, want multipart/mixed", typ)
	}
	mr := m.MultipartReader()
	toc, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(toc.Body)
	for _, want := range []string{"Today's Topics:", "1. Build fails on arm64 (Alice)", "2. Re: Build fails on arm64 (Bøb)",
		"4. Core dump (dave@example.org)", "too large for the digest (50.0 MB)", "imap://lists.example.org/dev@lists.example.org;UIDVALIDITY=1795767502/;UID=13"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("contents lack %q:\n%s", want, text)
		}
	}
	dg, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, _ := dg.Header.ContentType(); typ != "multipart/digest" {
		t.Fatalf("second part %q, want multipart/digest", typ)
	}
	_, params, _ := dg.Header.ContentType()
	parts := rawParts(t, raw, params["boundary"])
	if got, want := len(parts), 3; got != want {
		t.Fatalf("%d posts in the digest, want %d", got, want)
	}
	for i, p := range parts {
		h, body := splitPart(t, p)
		if got := h.Get("Content-Type"); got != "message/rfc822" {
			t.Errorf("part %d: Content-Type %q", i, got)
		}
		if !bytes.Equal(body, e.Posts[i].Raw) {
			t.Errorf("part %d is not the archived post byte for byte:\n%q\nwant\n%q", i, body, e.Posts[i].Raw)
		}
	}
}

// rawParts splits a multipart body on its boundary the way RFC 2046 says
// (the line break before a delimiter belongs to it), giving each part's
// exact bytes.
func rawParts(t *testing.T, raw []byte, boundary string) [][]byte {
	t.Helper()
	delim := []byte("\r\n--" + boundary)
	chunks := bytes.Split(raw, delim)
	var out [][]byte
	for _, c := range chunks[1:] {
		if bytes.HasPrefix(c, []byte("--")) {
			break
		}
		out = append(out, bytes.TrimPrefix(c, []byte("\r\n")))
	}
	return out
}

func splitPart(t *testing.T, p []byte) (textproto.Header, []byte) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(p))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(br)
	return h, body
}

// TestPlainDigest checks the plain digest against RFC 1153: the
// preamble, a line of 70 hyphens, each message's header lines (Date,
// From, Subject, Message-ID in that order) and text, each followed by a
// blank line, 30 hyphens and a blank line; then the trailer, "End of"
// the digest's name over a line of as many asterisks.
func TestPlainDigest(t *testing.T) {
	t.Parallel()
	raw, err := Render(edition(FormatPlain))
	if err != nil {
		t.Fatal(err)
	}
	m, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body) // quoted-printable undone
	msgs, trailer := burst(t, string(body))
	if got, want := len(msgs), 4; got != want {
		t.Fatalf("%d messages, want %d", got, want)
	}
	wantFields := []string{"Date", "From", "Subject", "Message-ID"}
	for i, msg := range msgs {
		head, text, ok := strings.Cut(msg, "\n\n")
		if !ok {
			t.Fatalf("message %d has no blank line after its header", i)
		}
		lines := strings.Split(head, "\n")
		for j, f := range wantFields {
			if j >= len(lines) || !strings.HasPrefix(lines[j], f+": ") {
				t.Errorf("message %d: header line %d is %q, want %s:", i, j, lines[j], f)
			}
		}
		if i == 1 && !strings.Contains(text, "Grüße") {
			t.Errorf("message 1's text is not decoded: %q", text)
		}
		if i == 2 && !strings.Contains(text, "[Attachment: notes.pdf (application/pdf, 9 bytes), in the archive]") {
			t.Errorf("message 2 does not list its attachment: %q", text)
		}
	}
	if want := "End of dev Digest, Vol 3, Issue 12\n**********************************\n"; trailer != want {
		t.Errorf("trailer %q, want %q", trailer, want)
	}
}

// burst is an RFC 1153 digest burster: it returns the messages and the
// trailer, and fails on a digest it cannot split.
func burst(t *testing.T, body string) ([]string, string) {
	t.Helper()
	body = strings.ReplaceAll(body, "\r\n", "\n")
	_, rest, ok := strings.Cut(body, "\n"+strings.Repeat("-", 70)+"\n\n")
	if !ok {
		t.Fatalf("no preamble separator (70 hyphens between line breaks, then a blank line):\n%s", body)
	}
	msgs := strings.Split(rest, "\n\n"+strings.Repeat("-", 30)+"\n\n")
	if len(msgs) < 2 {
		t.Fatalf("no message separator:\n%s", rest)
	}
	return msgs[:len(msgs)-1], msgs[len(msgs)-1]
}

func TestSummary(t *testing.T) {
	t.Parallel()
	raw, err := Render(edition(FormatSummary))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := message.Read(bytes.NewReader(raw))
	b, _ := io.ReadAll(m.Body)
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	for _, want := range []string{
		"4 new posts in 3 threads:",
		"* Build fails on arm64\n  (2 new: Alice, Bøb)\n  Bøb: Yes: the fix is in main. Grüße. ------------------------------ That line is not a separator.\n" +
			"  imap://lists.example.org/dev@lists.example.org;UIDVALIDITY=1795767502/;UID=11\n",
		"  Carol: Draft attached; café at nine.\n",
		"  dave@example.org: (too large for the digest: 50.0 MB)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "> The build fails") || strings.Contains(text, "Alice wrote:") {
		t.Errorf("summary shows quoted text:\n%s", text)
	}
}

// TestSummaryWebLinks: with a web archive, the summary links each thread
// to its newest post's permalink there.
func TestSummaryWebLinks(t *testing.T) {
	t.Parallel()
	e := edition(FormatSummary)
	e.WebURL = "https://lists.example.org/"
	raw, err := Render(e)
	if err != nil {
		t.Fatal(err)
	}
	if want := "  https://lists.example.org/dev@lists.example.org/m/bob@example.org/\r\n"; !strings.Contains(string(raw), want) {
		t.Errorf("summary lacks %q:\n%s", want, raw)
	}
}

// TestPartialVariant renders the share of a member who took digests for
// part of the issue: only their posts, and a Message-ID of its own.
func TestPartialVariant(t *testing.T) {
	t.Parallel()
	e := edition(FormatPlain)
	whole, _ := Render(e)
	e.Variant.Spans = []Span{{11, 13}}
	part, err := Render(e)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(part, []byte("Build fails on arm64 (Alice)")) || !bytes.Contains(part, []byte("Release notes draft (Carol)")) {
		t.Errorf("partial copy holds the wrong posts:\n%s", part)
	}
	id := func(b []byte) string {
		m, _ := message.Read(bytes.NewReader(b))
		return m.Header.Get("Message-ID")
	}
	if id(whole) == id(part) {
		t.Errorf("partial and whole copies share Message-ID %s", id(part))
	}
	e.Variant.Spans = []Span{{20, 30}}
	if _, err := Render(e); !errors.Is(err, ErrEmpty) {
		t.Errorf("a variant with no post: err %v, want ErrEmpty", err)
	}
}

func TestParseVariant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" for an error
	}{
		{"mime {[5,9)}", "mime {[5,9)}"},
		{"plain {[5,9),[12,20)}", "plain {[5,9),[12,20)}"},
		{"summary {}", "summary {}"},
		{"html {[5,9)}", ""},
		{"mime [5,9)", ""},
		{"mime {[9,5)}", ""},
		{"mime {[a,9)}", ""},
		{"mime", ""},
	}
	for _, tc := range tests {
		v, err := ParseVariant(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseVariant(%q) = %v, want an error", tc.in, v)
			}
			continue
		}
		if err != nil || v.String() != tc.want {
			t.Errorf("ParseVariant(%q) = %q, %v; want %q", tc.in, v.String(), err, tc.want)
		}
	}
}
