package mailmsg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSearchText: the words a reader sees are in a message's search text,
// whatever the transfer encoding and charset (testdata/search, one message
// per case), case-folded; what a reader does not see (markup, scripts,
// attachments that are not text, the HTML twin of a text part) is not.
func TestSearchText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		want, not []string
	}{
		{"01-utf8-qp.eml", []string{"médiathèque", "see you there"}, []string{"=c3"}},
		{"02-latin1-qp.eml", []string{"bibliothèque municipale"}, nil},
		{"03-koi8r-base64.eml", []string{"библиотека"}, nil},
		{"04-shiftjis-base64.eml", []string{"図書館"}, nil},
		{"05-ascii-base64.eml", []string{"this message was sent"}, nil},
		{"06-iso2022jp.eml", []string{"閲覧室"}, nil},
		{"07-undeclared-8bit.eml", []string{"départementales", "à midi"}, nil},
		{"08-html-only.eml", []string{"stadtbücherei", "lecture at the"}, []string{"<b>", "color", "zzscriptword"}},
		{"09-alternative.eml", []string{"βιβλιοθήκη"}, []string{"htmlonlyword"}},
		{"10-mixed-nested.eml", []string{"café", "“zeitschriftenlesesaal”"}, []string{"pdfonlyword"}},
		{"11-forwarded.eml", []string{"forwarding this", "knihovna v brně je zavřená"}, nil},
		{"12-euckr-base64.eml", []string{"도서관은"}, nil},
		{"13-gb2312-base64.eml", []string{"图书馆"}, nil},
	}
	for _, tc := range tests {
		raw, err := os.ReadFile(filepath.Join("../../testdata/search", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got := SearchText(Canonicalize(raw))
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: search text lacks %q:\n%s", tc.file, w, got)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: search text has %q:\n%s", tc.file, n, got)
			}
		}
	}
}

// TestSearchTextBounded: messages inside messages ten thousand deep, and
// a huge text, are walked without recursion and within bounds.
func TestSearchTextBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for range 10000 {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	if got := SearchText([]byte(b.String())); strings.Contains(got, "deep") {
		t.Error("text 10,000 messages deep was read: the nesting bound is not applied")
	}
	big := "Content-Type: text/plain\r\n\r\n" + strings.Repeat("word ", 1<<20)
	if got := SearchText([]byte(big)); len(got) > MaxSearchText+1 {
		t.Errorf("search text of %d bytes, want at most %d", len(got), MaxSearchText)
	}
}

func TestHTMLLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"<p>subscribe</p><p>set delivery digest</p>", "\nsubscribe\n\nset delivery digest\n"},
		{"<div>help<br>info</div>", "\nhelp\ninfo\n"},
		{"<p>approve</p><blockquote><p>unsubscribe</p></blockquote>", "\napprove\n\n> \n> unsubscribe\n> \n"},
		{"<style>p{}</style><script>x</script>who", "who"},
		{"a &amp; b\nc", "a & b c"},
	} {
		if got := HTMLLines(tc.in); got != tc.want {
			t.Errorf("HTMLLines(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestUnflow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		delsp bool
		want  string
	}{
		{"one \r\ntwo \r\nthree\r\nnext\r\n", false, "one two three\nnext\n"},
		{"joi\r\nned\r\n", false, "joi\nned\n"},
		{"ab \r\ncd\r\n", true, "abcd\n"},
		{"> quoted \r\n> more\r\nmine\r\n", false, "> quoted more\nmine\n"},
		{" >not a quote\r\n", false, ">not a quote\n"},
		{"text \r\n-- \r\nsig\r\n", false, "text -- \nsig\n"},
		{"-- \r\nsig\r\n", false, "-- \nsig\n"},
	} {
		if got := Unflow(tc.in, tc.delsp); got != tc.want {
			t.Errorf("Unflow(%q, %v) = %q, want %q", tc.in, tc.delsp, got, tc.want)
		}
	}
}
