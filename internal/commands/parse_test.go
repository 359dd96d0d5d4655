package commands

import (
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, subject, body string
		want                string
	}{
		{"subject only", "subscribe", "", "[subscribe]"},
		{"reply subject", "Re: confirm abc123", "", "[confirm [abc123]]"},
		{"body lines", "", "HELP\ninfo\n", "[help info]"},
		{"quotes and signature", "", "subscribe digest\n> unsubscribe\n-- \nunsubscribe\n", "[subscribe [digest]]"},
		{"end stops", "", "info\nend\nunsubscribe\n", "[info]"},
		{"blank subject", "", "\n\n  lists  \n", "[lists]"},
	}
	for _, tc := range tests {
		var got []string
		for _, c := range Parse(tc.subject, tc.body) {
			if len(c.Args) > 0 {
				got = append(got, fmt.Sprintf("%s %v", c.Name, c.Args))
			} else {
				got = append(got, c.Name)
			}
		}
		if g := fmt.Sprint(got); g != tc.want {
			t.Errorf("%s: Parse() = %s, want %s", tc.name, g, tc.want)
		}
	}
	if n := len(Parse("", strings.Repeat("info\n", 1000))); n != MaxLines {
		t.Errorf("a thousand commands: %d parsed, want %d", n, MaxLines)
	}
}

// FuzzParse is the command parser's fuzz target: it never panics, never
// returns more than MaxLines+1 commands, and every command is one lower
// case word with at most 9 arguments, without line breaks.
func FuzzParse(f *testing.F) {
	f.Add("Re: subscribe", "help\n> quoted\n-- \nsig")
	f.Add("", strings.Repeat("confirm x\n", 60))
	f.Fuzz(func(t *testing.T, subject, body string) {
		cmds := Parse(subject, body)
		if len(cmds) > MaxLines+1 {
			t.Fatalf("%d commands", len(cmds))
		}
		for _, c := range cmds {
			if c.Name == "" || c.Name != strings.ToLower(c.Name) || strings.ContainsAny(c.Name, " \t\r\n") || len(c.Args) > 9 {
				t.Fatalf("bad command %+v", c)
			}
			if strings.ContainsAny(c.Line, "\r\n") {
				t.Fatalf("line with a break: %q", c.Line)
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
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := firstText(raw)
		if len(s) > 64<<10 {
			t.Fatalf("firstText returned %d bytes", len(s))
		}
		for _, c := range Parse("", s) {
			if c.Name == "" {
				t.Fatalf("empty command from %q", s)
			}
		}
	})
}
