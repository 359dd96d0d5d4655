package mailaddr

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parley-list/parley/internal/errs"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" means invalid
	}{
		{"alice@example.org", "alice@example.org"},
		{"  Alice@Example.ORG ", "alice@example.org"},
		{"first.last+tag@sub.example.org", "first.last+tag@sub.example.org"},
		{"demo@localhost", "demo@localhost"},
		{`"john smith"@example.org`, `"john smith"@example.org`},
		{`"a\"b"@example.org`, `"a\"b"@example.org`},
		{"jörg@bücher.example", "jörg@xn--bcher-kva.example"},
		{"o'brien@example.org", "o'brien@example.org"},
		{"", ""},
		{"alice", ""},
		{"@example.org", ""},
		{"alice@", ""},
		{".alice@example.org", ""},
		{"al..ice@example.org", ""},
		{"alice.@example.org", ""},
		{"al ice@example.org", ""},
		{"alice@exa mple.org", ""},
		{"alice@-example.org", ""},
		{"alice@example..org", ""},
		{"alice@[127.0.0.1]", ""},
		{"Alice <alice@example.org>", ""},
		{"alice@example.org\r\nBcc: x@y", ""},
		{"ali\x00ce@example.org", ""},
		{"\xff@example.org", ""},
		{`"unterminated@example.org`, ""},
		{strings.Repeat("a", 65) + "@example.org", ""},
		{"a@" + strings.Repeat("b", 64) + ".org", ""},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("Parse(%q) = %q, want an error", tc.in, got)
		case tc.want == "" && !errs.IsInvalid(err):
			t.Errorf("Parse(%q) error %v is not *errs.Invalid", tc.in, err)
		case tc.want != "" && err != nil:
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.want)
		case tc.want != "" && got.String() != tc.want:
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseList(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"dev@lists.example.org":  "dev@lists.example.org",
		"Dev@Lists.Example.org":  "dev@lists.example.org",
		"rust-users@example.org": "rust-users@example.org",
		"a.b_c-d@example.org":    "a.b_c-d@example.org",
		"requests@example.org":   "requests@example.org",
		"owner-talk@example.org": "owner-talk@example.org",
	}
	for in, want := range good {
		if got, err := ParseList(in); err != nil || got.String() != want {
			t.Errorf("ParseList(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"dev-request@example.org", "dev-owner@example.org", "dev-bounces@example.org",
		"x-confirm@example.org", "-dev@example.org", "dév@example.org", "dev+x@example.org", "a/b@example.org", "not an address"}
	for _, in := range bad {
		if got, err := ParseList(in); !errs.IsInvalid(err) {
			t.Errorf("ParseList(%q) = %q, %v; want *errs.Invalid", in, got, err)
		}
	}
}

// FuzzParse checks Parse's invariants on arbitrary input: it never panics,
// what it accepts is valid UTF-8 without controls, normalisation is
// idempotent, and the error message stays bounded.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"alice@example.org", `"a b"@x.org`, "jörg@bücher.example", "a@b@c", "x@[1.2.3.4]", "\x00@a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !errs.IsInvalid(err) {
				t.Fatalf("Parse(%q) error %T is not *errs.Invalid", s, err)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("Parse(%q) error is %d bytes", s, len(err.Error()))
			}
			return
		}
		out := a.String()
		if !utf8.ValidString(out) || strings.ContainsAny(out, "\x00\r\n") || len(out) > maxAddress {
			t.Fatalf("Parse(%q) = %q: invalid output", s, out)
		}
		again, err := Parse(out)
		if err != nil || again.String() != out {
			t.Fatalf("Parse(Parse(%q)) = %q, %v; want %q", s, again, err, out)
		}
		if l, err := ParseList(s); err == nil && (l.Local != strings.ToLower(l.Local) || !validListLocal(l.Local)) {
			t.Fatalf("ParseList(%q) = %q", s, l)
		}
	})
}
