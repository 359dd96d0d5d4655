package mailmsg

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\rb\r", "a\r\nb\r\n"},
		{"a\r\r\nb", "a\r\n\r\nb"},
		{"a\n\r\nb", "a\r\n\r\nb"},
		{"\n.\n", "\r\n.\r\n"},
		{"x\r", "x\r\n"},
	}
	for _, tc := range tests {
		if got := string(Canonicalize([]byte(tc.in))); got != tc.want {
			t.Errorf("Canonicalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	in := []byte("already\r\ncanonical\r\n")
	if out := Canonicalize(in); &out[0] != &in[0] {
		t.Error("Canonicalize copied a canonical message")
	}
}

func TestMsgIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"<a@b>", []string{"a@b"}},
		{" <a@b> <c@d>\r\n\t<e@f>", []string{"a@b", "c@d", "e@f"}},
		{"<1@x> broken <2@x>", []string{"1@x", "2@x"}},
		{"<a@b> <a@b>", []string{"a@b"}},
		{"<has space@x> <ok@x>", []string{"ok@x"}},
		{"<<nested@x>>", []string{"nested@x"}},
		{"no ids here", nil},
		{"<unterminated@x", nil},
		{"<>", nil},
		{"(comment) <a@b> (another <fake@x)", []string{"a@b"}},
	}
	for _, tc := range tests {
		if got := MsgIDs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("MsgIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestThreadRefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		refs, irt []string
		self      string
		want      []string
	}{
		{"references only", []string{"a@x", "b@x"}, nil, "c@x", []string{"a@x", "b@x"}},
		{"in-reply-to only", nil, []string{"b@x"}, "c@x", []string{"b@x"}},
		{"in-reply-to agrees", []string{"a@x", "b@x"}, []string{"b@x"}, "c@x", []string{"a@x", "b@x"}},
		{"in-reply-to is the parent", []string{"b@x", "a@x"}, []string{"b@x"}, "c@x", []string{"a@x", "b@x"}},
		{"self reference dropped", []string{"a@x", "c@x"}, []string{"c@x"}, "c@x", []string{"a@x"}},
		{"garbage without @ dropped", []string{"a@x"}, []string{"yes"}, "c@x", []string{"a@x"}},
	}
	for _, tc := range tests {
		if got := ThreadRefs(tc.refs, tc.irt, tc.self); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ThreadRefs() = %q, want %q", tc.name, got, tc.want)
		}
	}
	var many []string
	for i := range 100000 {
		many = append(many, strings.Repeat("x", i%7)+"@"+string(rune('a'+i%26))+strings.Repeat("y", i%5)+"."+strconv.Itoa(i))
	}
	got := ThreadRefs(many, nil, "self@x")
	if len(got) != MaxRefs || got[0] != many[0] || got[len(got)-1] != many[len(many)-1] {
		t.Errorf("100,000 references: kept %d, first %q, last %q", len(got), got[0], got[len(got)-1])
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	raw := Canonicalize([]byte("From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\n" +
		"To: dev@lists.example.org\nSubject: =?iso-8859-1?q?caf=E9?= question\n" +
		"Date: Thu, 26 Nov 2026 10:00:00 +0100\nMessage-ID: <q1@example.org>\n" +
		"References: <r1@example.org> junk <r2@example.org>\nIn-Reply-To: <r2@example.org>\n" +
		"List-Id: Other list <other.example.net>\nAuto-Submitted: auto-replied; x=y\n\nbody\n"))
	s, err := Parse(raw, "parley.test", Limits{})
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"MessageID", s.MessageID, "q1@example.org"},
		{"From", s.From, "joerg@example.org"},
		{"FromName", s.FromName, "Jörg"},
		{"Subject", s.Subject, "café question"},
		{"Parent", s.Parent(), "r2@example.org"},
		{"AutoSubmitted", s.AutoSubmitted, "auto-replied"},
		{"ListIDs", strings.Join(s.ListIDs, ","), "other.example.net"},
		{"Date", s.Date.UTC().Format("2006-01-02 15:04"), "2026-11-26 09:00"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !slices.Equal(s.Refs, []string{"r1@example.org", "r2@example.org"}) || s.Synthesised {
		t.Errorf("Refs = %q, synthesised %v", s.Refs, s.Synthesised)
	}
}

// TestParseFromLenient: when the strict parser gives up on From, the
// address in angle brackets is the sender, never something address-like
// in the display name.
func TestParseFromLenient(t *testing.T) {
	t.Parallel()
	tests := []struct{ from, want string }{
		{"=?utf-8?q?B=0D=0ABcc:_victim@example.net?= <b@example.org>", "b@example.org"},
		{"victim@example.net <b@example.org>", "b@example.org"},
		{"a@example.org", "a@example.org"},
		{"broken <<a@example.org", "a@example.org"},
		{"no address here", ""},
	}
	for _, tt := range tests {
		s, err := Parse([]byte("From: "+tt.from+"\r\nSubject: x\r\n\r\nbody\r\n"), "h.example", Limits{})
		if err != nil {
			t.Fatalf("From: %s: %v", tt.from, err)
		}
		if s.From != tt.want {
			t.Errorf("From: %s gives sender %q, want %q", tt.from, s.From, tt.want)
		}
	}
}

// TestParseSynthesisedID: a message without Message-ID gets one that
// depends only on its content, so a retry gets the same id.
func TestParseSynthesisedID(t *testing.T) {
	t.Parallel()
	raw := []byte("From: a@example.org\r\nSubject: no id\r\n\r\nbody\r\n")
	s1, err1 := Parse(raw, "h.example", Limits{})
	s2, err2 := Parse(append([]byte("Received: from elsewhere\r\n"), raw...), "h.example", Limits{})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !s1.Synthesised || s1.MessageID != s2.MessageID || !strings.HasSuffix(s1.MessageID, "@h.example") {
		t.Errorf("synthesised ids %q and %q (synthesised=%v), want equal, @h.example", s1.MessageID, s2.MessageID, s1.Synthesised)
	}
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	nest := func(depth int) []byte {
		var b bytes.Buffer
		b.WriteString("From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n")
		for i := 1; i <= depth; i++ {
			b.WriteString("--b" + strconv.Itoa(i-1) + "\r\nContent-Type: multipart/mixed; boundary=b" + strconv.Itoa(i) + "\r\n\r\n")
		}
		b.WriteString("--b" + strconv.Itoa(depth) + "\r\nContent-Type: text/plain\r\n\r\nleaf\r\n")
		for i := depth; i >= 0; i-- {
			b.WriteString("--b" + strconv.Itoa(i) + "--\r\n")
		}
		return b.Bytes()
	}
	if s, err := Parse(nest(5), "h", Limits{}); err != nil || s.MIME.Parts != 1 || s.MIME.Malformed {
		t.Errorf("depth 5: %v, %+v", err, s)
	}
	var pe *Error
	_, err := Parse(nest(1000), "h", Limits{})
	if !asError(err, &pe) || pe.Kind != Malformed || !strings.Contains(pe.Msg, "nested") {
		t.Errorf("depth 1000: %v, want a nesting refusal", err)
	}
	many := bytes.Repeat([]byte("X-A: b\r\n"), 100000)
	_, err = Parse(append(many, []byte("\r\nbody\r\n")...), "h", Limits{})
	if !asError(err, &pe) || pe.Kind != HeaderTooLarge {
		t.Errorf("100,000 fields: %v, want HeaderTooLarge", err)
	}
	noBoundary := []byte("Content-Type: multipart/mixed; boundary=never\r\n\r\njust text\r\n")
	if s, err := Parse(noBoundary, "h", Limits{}); err != nil || !s.MIME.Malformed {
		t.Errorf("missing boundary: %v, %+v, want accepted and marked malformed", err, s)
	}
	if s, err := Parse([]byte("Subject: all header\r\nFrom: a@b.c\r\n"), "h", Limits{}); err != nil || s.Subject != "all header" {
		t.Errorf("all-header message: %v, %+v", err, s)
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	*target = e
	return ok
}

// corpora are the message collections under the repository's testdata/
// (see testdata/README.md): real bounces, and our own thread and MIME
// cases. They are part of the repository: a missing or empty one is a
// failure, never a reason to skip.
const corpora = "../../testdata"

var corpusNames = []string{"bounces", "threads", "mime"}

// TestParseCorpora parses every message (*.eml) in the corpora: none may
// fail for anything but a clearly malformed header, and every summary
// must be well formed.
func TestParseCorpora(t *testing.T) {
	t.Parallel()
	count := map[string]int{}
	err := filepath.WalkDir(corpora, func(path string, d os.DirEntry, err error) error {
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
		rel, _ := filepath.Rel(corpora, path)
		count[strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]]++
		s, err := Parse(Canonicalize(raw), "h.example", Limits{})
		if err != nil {
			t.Logf("%s: refused: %v", rel, err)
			return nil
		}
		if s.MessageID == "" || slices.Contains(s.Refs, s.MessageID) || len(s.Refs) > MaxRefs {
			t.Errorf("%s: bad summary: id %q refs %q", rel, s.MessageID, s.Refs)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the corpora: %v", err)
	}
	n := 0
	for _, name := range corpusNames {
		if count[name] == 0 {
			t.Fatalf("corpus %s: no messages under %s", name, filepath.Join(corpora, name))
		}
		n += count[name]
	}
	if n < 100 {
		t.Fatalf("parsed only %d corpus files, want at least 100", n)
	}
}

func TestBaseSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		reply    bool
	}{
		{"Hello world", "hello world", false},
		{"Re: Hello  world", "hello world", true},
		{"RE: re: Fwd: hello", "hello", true},
		{"[dev] Re: [dev] hello", "hello", true},
		{"AW: Re[2]: hello", "hello", true},
		{"Reply all: hello", "reply all: hello", false},
		{"Re:", "re:", true},
		{"[dev]", "[dev]", false},
		{"[unclosed hello", "[unclosed hello", false},
	}
	for _, tc := range tests {
		got, reply := BaseSubject(tc.in)
		if got != tc.want || reply != tc.reply {
			t.Errorf("BaseSubject(%q) = %q, %v; want %q, %v", tc.in, got, reply, tc.want, tc.reply)
		}
	}
}

// TestReplyID: the parent an In-Reply-To names, however the sender's
// software wrote the field.
func TestReplyID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, v string
		refs    []string
		want    string
	}{
		{"plain", "<p@x>", nil, "p@x"},
		{"exmh", `Message from Tom Herrera <tom@herrera.example.org> of "Tue, 25 Mar 2025 10:02:11 +0100." <id@herrera.example.org>`, nil, "id@herrera.example.org"},
		{"MH", `Your message of "Tue, 25 Mar 2025 10:02:11 +0100." <id@x>`, nil, "id@x"},
		{"Gnus", `<id@x> (message from Tom Herrera <tom@herrera.example.org> on Tue, 25 Mar 2025)`, nil, "id@x"},
		{"comment with quoted paren", `<id@x> ("a)b" <tom@y>)`, nil, "id@x"},
		{"References decide", "<a@x> <b@x>", []string{"r@x", "b@x"}, "b@x"},
		{"several ids", "<a@x> <b@x>", nil, "a@x"},
		{"address only", "Tom <tom@x>", nil, "tom@x"},
		{"no at", "<yes>", nil, ""},
		{"empty", "", nil, ""},
		{"unterminated", "<a@x", nil, ""},
	}
	for _, tc := range tests {
		if got := ReplyID(tc.v, tc.refs); got != tc.want {
			t.Errorf("%s: ReplyID(%q) = %q, want %q", tc.name, tc.v, got, tc.want)
		}
	}
}

// TestBareMessageID: a Message-ID without its brackets is taken when it
// is plainly one id; anything else gets a made-up id.
func TestBareMessageID(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"20250327.4471.bare@example.net": "20250327.4471.bare@example.net",
		" a@b ":                          "a@b",
		"two words@x":                    "",
		"no-at-sign":                     "",
		"a@b, c@d":                       "",
	} {
		s, err := Parse([]byte("Message-ID: "+v+"\r\nSubject: x\r\n\r\nbody\r\n"), "h.example", Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			if !s.Synthesised {
				t.Errorf("Message-ID %q: taken as %q, want a made-up id", v, s.MessageID)
			}
		} else if s.MessageID != want || s.Synthesised {
			t.Errorf("Message-ID %q: %q (made up %v), want %q", v, s.MessageID, s.Synthesised, want)
		}
	}
}
