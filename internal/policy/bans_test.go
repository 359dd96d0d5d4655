package policy_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/policy"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*@spam.example", "bob@spam.example", true},
		{"*@spam.example", "bob@spam.example.org", false},
		{"spammer@*", "spammer@anything", true},
		{"b?b@x", "bob@x", true},
		{"b?b@x", "bb@x", false},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"*a*a*a*b", strings.Repeat("a", 10000), false},
		{"ü*@x", "über@x", true},
		// A '*' in the address must not swallow the pattern's wildcard:
		// "*x@spam.example" was once let through a ban of "*@spam.example".
		{"*@spam.example", "*x@spam.example", true},
		{"*", "*0", true},
	}
	for _, tc := range tests {
		if got := policy.Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzGlob checks Glob against the same pattern as a regular expression.
func FuzzGlob(f *testing.F) {
	f.Add("*@spam.example", "bob@spam.example")
	f.Add("a*b?c", "axxbyc")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) || len(pattern) > 64 || len(s) > 256 {
			return
		}
		var re strings.Builder
		re.WriteString("^(?s:")
		for _, r := range pattern {
			switch r {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString(")$")
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := policy.Glob(pattern, s); got != want {
			t.Errorf("Glob(%q, %q) = %v, regexp %s says %v", pattern, s, got, re.String(), want)
		}
	})
}

// TestBans: a list's bans and the server-wide ones apply to the list,
// another list's do not; adding twice and lifting what is not there say so.
func TestBans(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	ctx := t.Context()
	newList := func(addr string) int64 {
		a, _ := mailaddr.ParseList(addr)
		l, err := lists.Create(ctx, d, a, lists.Settings{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	dev, other := newList("dev@lists.example.org"), newList("other@lists.example.org")
	for _, b := range []struct {
		list    int64
		pattern string
		want    bool
	}{{dev, "*@spam.example", true}, {dev, "*@spam.example", false}, {0, "spammer@*", true}, {other, "bob@*", true}} {
		if got, err := policy.Ban(ctx, d, b.list, b.pattern); err != nil || got != b.want {
			t.Errorf("Ban(%d, %q) = %v, %v; want %v", b.list, b.pattern, got, err, b.want)
		}
	}
	for _, c := range []struct {
		addr string
		want bool
	}{{"Eve@SPAM.example", true}, {"spammer@example.org", true}, {"bob@example.org", false}} {
		if got, err := policy.Banned(ctx, d, dev, c.addr); err != nil || got != c.want {
			t.Errorf("Banned(dev, %q) = %v, %v; want %v", c.addr, got, err, c.want)
		}
	}
	bans, err := policy.Bans(ctx, d, dev)
	if err != nil || len(bans) != 2 || bans[0] != (policy.BanEntry{Pattern: "spammer@*"}) {
		t.Errorf("Bans(dev) = %+v, %v; want the global ban, then the list's", bans, err)
	}
	if all, _ := policy.Bans(ctx, d, 0); len(all) != 3 {
		t.Errorf("Bans(all) = %+v, want 3", all)
	}
	if ok, err := policy.Unban(ctx, d, dev, "spammer@*"); err != nil || ok {
		t.Errorf("Unban(dev, global pattern) = %v, %v; want false: it is not the list's", ok, err)
	}
	if ok, err := policy.Unban(ctx, d, 0, "spammer@*"); err != nil || !ok {
		t.Errorf("Unban(global) = %v, %v; want true", ok, err)
	}
}
