package nntpd

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// stuff is how a client sends an article: CRLF lines, a leading "." made
// "..", and the line "." at the end.
func stuff(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		if len(l) > 0 && l[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// FuzzReadArticle: an article sent as a client sends it comes back as it
// was, whatever its lines hold (bare CRs and LFs, dots, NULs); and any
// input at all neither panics nor returns more than the limit.
func FuzzReadArticle(f *testing.F) {
	f.Add([]byte("From: a@b\r\n\r\nbody\r\n.dot\r\n"), []byte("x\n.\n"))
	f.Add([]byte("..\r\n.\r\n"), []byte(".\r\n"))
	f.Fuzz(func(t *testing.T, content, arbitrary []byte) {
		lines := bytes.Split(content, []byte("\r\n"))
		want := bytes.Join(lines, []byte("\r\n"))
		want = append(want, "\r\n"...)
		got, err := readArticle(bufio.NewReaderSize(bytes.NewReader(stuff(lines)), 16), 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("readArticle(stuffed %q) = %q, %v; want %q", content, got, err, want)
		}
		got, err = readArticle(bufio.NewReaderSize(bytes.NewReader(arbitrary), 16), 64)
		if err == nil && len(got) > 64 {
			t.Fatalf("%d bytes past the limit", len(got))
		}
	})
}

// FuzzParseRange: any range argument gives a range or a refusal, never a
// panic, and a range never starts past its end unless it is empty.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"1", "1-", "1-5", "-", "5-1", "99999999999999999999", "0-0", "-3"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, s string, high int64) {
		lo, hi, ok := parseRange(s, high)
		if ok && (lo < 0 || hi < 0 && high >= 0) {
			t.Fatalf("parseRange(%q, %d) = %d, %d", s, high, lo, hi)
		}
	})
}

// FuzzPathOf: whatever Path a stored article holds, the path served
// after this server's name is one line of path identities and "!".
func FuzzPathOf(f *testing.F) {
	for _, s := range []string{"Path: a!b!not-for-mail\r\n", "From: x\r\npath:  feed.example \r\n", "Path: a\r\n b\r\n", "Path:\x00!\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		p := pathOf(head)
		if p == "" || len(p) > 512 || strings.Trim(p, pathChars) != "" {
			t.Fatalf("pathOf(%q) = %q", head, p)
		}
	})
}
