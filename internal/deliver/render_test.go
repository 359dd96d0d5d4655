package deliver

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

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
