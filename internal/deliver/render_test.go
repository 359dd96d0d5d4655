package deliver

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
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

func TestVERP(t *testing.T) {
	t.Parallel()
	tests := []struct{ list, rcpt, want string }{
		{"dev@lists.example.org", "bob@example.org", "dev-bounces+bob=example.org@lists.example.org"},
		{"dev@lists.example.org", "a=b@example.org", "dev-bounces+a=b=example.org@lists.example.org"},
	}
	for _, tc := range tests {
		got := VERP(tc.list, tc.rcpt)
		if got != tc.want {
			t.Errorf("VERP(%q, %q) = %q, want %q", tc.list, tc.rcpt, got, tc.want)
		}
		detail := strings.TrimSuffix(strings.TrimPrefix(got, "dev-bounces+"), "@lists.example.org")
		if back, ok := DecodeVERP(detail); !ok || back != tc.rcpt {
			t.Errorf("DecodeVERP(%q) = %q, %v; want %q", detail, back, ok, tc.rcpt)
		}
	}
	for _, bad := range []string{"", "noequals", "=x", "x="} {
		if got, ok := DecodeVERP(bad); ok {
			t.Errorf("DecodeVERP(%q) = %q, want failure", bad, got)
		}
	}
}

// FuzzVERP is the VERP decoder's fuzz target: decoding never panics, and
// any address encoded and decoded again comes back unchanged.
func FuzzVERP(f *testing.F) {
	for _, s := range []string{"bob=example.org", "a=b=c.d", "=", "x", "Bob.Smith+tag=Example.ORG"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, detail string) {
		addr, ok := DecodeVERP(detail)
		if !ok {
			return
		}
		if !strings.Contains(addr, "@") {
			t.Fatalf("DecodeVERP(%q) = %q without @", detail, addr)
		}
		v := VERP("dev@lists.example.org", addr)
		d2 := strings.TrimSuffix(strings.TrimPrefix(v, "dev-bounces+"), "@lists.example.org")
		if back, ok := DecodeVERP(d2); !ok || back != addr {
			t.Fatalf("round trip of %q: %q -> %q", addr, v, back)
		}
	})
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
	got, err := RenderPost(raw, l, Site{Hostname: "lists.example.org"}, 42)
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
	if a, _ := RenderPost(raw, announce, Site{Hostname: "h"}, 1); !bytes.Contains(a, []byte("List-Post: NO\r\n")) {
		t.Errorf("announce list copy lacks List-Post: NO")
	}
}
