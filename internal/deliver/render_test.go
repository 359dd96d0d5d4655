package deliver

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-message/textproto"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailmsg"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestPrefixSubject(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"hello", "[dev] hello"},
		{"Re: hello", "[dev] Re: hello"},
		{"Re: [dev] hello", "[dev] Re: hello"},
		{"[dev] Re: [dev] hello", "[dev] Re: [dev] hello"},
		{"[dev]", "[dev]"},
		{"", "[dev]"},
		{"=?utf-8?q?caf=C3=A9?=", "[dev] =?utf-8?q?caf=C3=A9?="},
	}
	for _, tc := range tests {
		if got := prefixSubject(tc.in, "[dev]"); got != tc.want {
			t.Errorf("prefixSubject(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRenderPost compares what members receive with a golden file: list
// headers replaced (a forged List-Id is gone), the prefix added once, the
// body untouched.
func TestRenderPost(t *testing.T) {
	t.Parallel()
	raw := mailmsg.Canonicalize([]byte("From: Alice <alice@example.org>\nTo: dev@lists.example.org\n" +
		"Subject: Re: [dev] build fails\nList-Id: <forged.example.net>\nPrecedence: bulk\n" +
		"Message-ID: <q@example.org>\n\nbody line 1\n\nbody line 2\n"))
	l := lists.List{Address: "dev@lists.example.org", DisplayName: "Developers, Inc.", SubjectPrefix: "[dev]",
		PostPolicy: lists.PostMembers, UIDValidity: 1795767502}
	got, err := RenderPost(raw, l, Site{ArchiveURL: "imap://lists.example.org"}, 42, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(got, raw[mailmsg.HeaderLen(raw):]) {
		t.Error("the body changed")
	}
	path := filepath.Join("testdata", "render", "post.golden")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
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
	announce := l
	announce.PostPolicy = lists.PostAnnounce
	if a, _ := RenderPost(raw, announce, Site{ArchiveURL: "imap://h"}, 1, false); !bytes.Contains(a, []byte("List-Post: NO\r\n")) {
		t.Errorf("announce list copy lacks List-Post: NO")
	}
	rewritten, err := RenderPost(raw, l, Site{ArchiveURL: "imap://h"}, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"From: \"Alice via Developers, Inc.\" <dev@lists.example.org>\r\n",
		"Reply-To: Alice <alice@example.org>\r\n", "X-Original-From: Alice <alice@example.org>\r\n"} {
		if !bytes.Contains(rewritten, []byte(want)) {
			t.Errorf("DMARC-rewritten copy lacks %q:\n%s", want, rewritten)
		}
	}
}

// TestReplyTo: each Reply-To setting, with and without the author's own
// Reply-To and DMARC From-rewriting. The author's Reply-To is never
// dropped, and a rewritten author stays reachable.
func TestReplyTo(t *testing.T) {
	t.Parallel()
	const author = "Alice <alice@example.org>"
	tests := []struct {
		setting, own string
		rewrite      bool
		wantReplyTo  string
		wantCc       string
	}{
		{"author", "", false, "", ""},
		{"author", "alice@home.example", false, "alice@home.example", ""},
		{"author", "", true, author, ""},
		{"author", "alice@home.example", true, "alice@home.example", ""},
		{"list", "", false, "dev@lists.example.org", ""},
		{"list", "alice@home.example", false, "dev@lists.example.org, alice@home.example", ""},
		{"list", "dev@lists.example.org", false, "dev@lists.example.org", ""},
		{"list", "", true, "dev@lists.example.org", author},
		{"talk@lists.example.org", "", false, "talk@lists.example.org", ""},
		{"talk@lists.example.org", "alice@home.example", true, "talk@lists.example.org, alice@home.example", author},
	}
	for _, tc := range tests {
		msg := "From: " + author + "\nSubject: s\nMessage-ID: <r@example.org>\n"
		if tc.own != "" {
			msg += "Reply-To: " + tc.own + "\n"
		}
		raw := mailmsg.Canonicalize([]byte(msg + "\nbody\n"))
		l := lists.List{Address: "dev@lists.example.org", ReplyTo: tc.setting, UIDValidity: 1}
		got, err := RenderPost(raw, l, Site{ArchiveURL: "imap://h"}, 1, tc.rewrite)
		if err != nil {
			t.Fatal(err)
		}
		h := header(t, got)
		if g := h.Get("Reply-To"); g != tc.wantReplyTo {
			t.Errorf("%s, own %q, rewrite %v: Reply-To %q, want %q", tc.setting, tc.own, tc.rewrite, g, tc.wantReplyTo)
		}
		if g := h.Get("Cc"); g != tc.wantCc {
			t.Errorf("%s, own %q, rewrite %v: Cc %q, want %q", tc.setting, tc.own, tc.rewrite, g, tc.wantCc)
		}
	}
}

func header(t *testing.T, msg []byte) textproto.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
