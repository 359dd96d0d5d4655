package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, subject, body string
		want                string // the commands
		ignored             int    // lines that were not commands
	}{
		{"subject only", "subscribe", "", "[subscribe]", 0},
		{"reply subject", "Re: confirm abc123", "", "[confirm [abc123]]", 0},
		{"descriptive subject", "owner commands", "who\n", "[who]", 0},
		{"question as subject", "Re: question", "", "[]", 0},
		{"body lines", "", "HELP\ninfo\n", "[help info]", 0},
		{"quotes and signature", "", "subscribe digest\n> unsubscribe\n-- \nunsubscribe\n", "[subscribe [digest]]", 0},
		{"end stops", "", "info\nend\nunsubscribe\n", "[info]", 0},
		{"blank subject", "", "\n\n  lists  \n", "[lists]", 0},
		{"a letter", "Joining", "Hi,\n\nplease add me to the list.\nI work at the library.\n\nThanks,\nIvan\n", "[]", 2},
		{"a letter with a command", "", "Dear list,\nsubscribe\nThanks a lot!\nIvan\n", "[subscribe]", 0},
		{"prose stops reading", "", "one\ntwo\nthree\nsubscribe\n", "[]", 3},
		{"subject and body say the same", "subscribe", "Subscribe\n", "[subscribe]", 0},
		{"synonyms run once", "", "join\nsubscribe\n", "[join]", 0},
		{"top-posted reply", "Re: confirm x", "confirm x\nOn Tue, Dec 1, 2026, list wrote:\nunsubscribe\n", "[confirm [x]]", 0},
		{"outlook reply", "", "help\n-----Original Message-----\nunsubscribe\n", "[help]", 0},
		{"whole reason", "", "reject 4 off topic, see the FAQ at https://example.org/faq and the charter\n", "[reject [4 off topic, see the FAQ at https://example.org/faq and]]", 0},
	}
	for _, tc := range tests {
		p := Parse(tc.subject, tc.body)
		var got []string
		for _, c := range p.Commands {
			if len(c.Args) > 0 {
				got = append(got, fmt.Sprintf("%s %v", c.Name, c.Args))
			} else {
				got = append(got, c.Name)
			}
		}
		if g := fmt.Sprint(got); g != tc.want {
			t.Errorf("%s: Parse() = %s, want %s", tc.name, g, tc.want)
		}
		if len(p.Ignored) != tc.ignored {
			t.Errorf("%s: ignored %q, want %d lines", tc.name, p.Ignored, tc.ignored)
		}
	}
	var many strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&many, "confirm x%d\n", i)
	}
	if n := len(Parse("", many.String()).Commands); n != MaxLines {
		t.Errorf("a thousand commands: %d parsed, want %d", n, MaxLines)
	}
	c := Parse("", "reject 4 off topic, see the FAQ at https://example.org/faq and the charter\n").Commands[0]
	if got, want := c.Rest, "4 off topic, see the FAQ at https://example.org/faq and the charter"; got != want {
		t.Errorf("Rest = %q, want %q", got, want)
	}
	if got := Parse("", "help \x1b[31mred\x07 \xff\xfe\n").Commands[0].Line; strings.ContainsFunc(got, unicode.IsControl) || !utf8.ValidString(got) {
		t.Errorf("Line %q keeps control bytes or invalid UTF-8", got)
	}
}

func TestReplySubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"question", "Re: question"},
		{"Re: question", "Re: question"},
		{"RE: Re: question", "RE: Re: question"},
		{"Re:question", "Re:question"},
		{"AW: Frage", "AW: Frage"},
		{"Fwd: question", "Re: Fwd: question"},
		{"", "Re: your message"},
		{"Reading list", "Re: Reading list"},
	} {
		if got := replySubject(tc.in); got != tc.want {
			t.Errorf("replySubject(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHuman(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{72 * time.Hour, "3 days"}, {24 * time.Hour, "1 day"}, {7 * 24 * time.Hour, "7 days"},
		{36 * time.Hour, "36 hours"}, {time.Hour, "1 hour"}, {90 * time.Minute, "90 minutes"},
		{5 * time.Minute, "5 minutes"}, {time.Second, "1 minute"},
	} {
		if got := human(tc.d); got != tc.want {
			t.Errorf("human(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// FuzzParse is the command parser's fuzz target: it never panics, never
// returns more than MaxLines+1 commands or MaxProse ignored lines, and
// every command is one lower case word with at most 9 arguments, without
// line breaks, control bytes or invalid UTF-8.
func FuzzParse(f *testing.F) {
	f.Add("Re: subscribe", "help\n> quoted\n-- \nsig")
	f.Add("", strings.Repeat("confirm x\n", 60))
	f.Add("Joining", "Hi,\nplease add me\nThanks,\nIvan\n")
	f.Fuzz(func(t *testing.T, subject, body string) {
		p := Parse(subject, body)
		if len(p.Commands) > MaxLines+1 || len(p.Ignored) > MaxProse {
			t.Fatalf("%d commands, %d ignored", len(p.Commands), len(p.Ignored))
		}
		for _, c := range p.Commands {
			if c.Name == "" || c.Name != strings.ToLower(c.Name) || strings.ContainsAny(c.Name, " \t\r\n") || len(c.Args) > 9 {
				t.Fatalf("bad command %+v", c)
			}
			if strings.ContainsFunc(c.Line+c.Rest, unicode.IsControl) || !utf8.ValidString(c.Line+c.Rest) {
				t.Fatalf("line with a control byte or invalid UTF-8: %q", c.Line)
			}
		}
	})
}

// FuzzFirstText: reading the command text of any message never panics,
// runs away on nesting, or returns more than its bound or invalid text
// for the command parser.
func FuzzFirstText(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nhelp\r\n--i--\r\n--o--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n58TF\r\n"))
	f.Add([]byte("Content-Type: text/html\r\n\r\n<p>subscribe</p><blockquote>unsubscribe</blockquote>\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := firstText(raw)
		if len(s) > 64<<10 {
			t.Fatalf("firstText returned %d bytes", len(s))
		}
		for _, c := range Parse("", s).Commands {
			if c.Name == "" {
				t.Fatalf("empty command from %q", s)
			}
		}
	})
}
