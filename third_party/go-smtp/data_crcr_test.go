package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// readData runs the DATA reader over in and returns what it read, how
// many bytes of in it consumed, and whether it found the end marker.
func readData(in string) (out string, consumed int, ended bool) {
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	r := &dataReader{r: br}
	var b bytes.Buffer
	_, err := io.Copy(&b, r)
	rest, _ := io.ReadAll(br)
	return b.String(), len(in) - len(rest), err == nil && !errors.Is(err, io.ErrUnexpectedEOF)
}

// lineReference is the line-based reading of SMTP data every line-based
// server (Postfix, Exim) does: lines end at CRLF only; the line "." ends
// the data; a leading dot is removed from any other line.
func lineReference(in string) (out string, consumed int, ended bool) {
	var b strings.Builder
	pos := 0
	for {
		i := strings.Index(in[pos:], "\r\n")
		if i < 0 {
			return b.String(), len(in), false
		}
		line := in[pos : pos+i]
		pos += i + 2
		if line == "." {
			return b.String(), pos, true
		}
		b.WriteString(strings.TrimPrefix(line, "."))
		b.WriteString("\r\n")
	}
}

// TestDataEndAfterCR: whatever comes before the final CRLF — CR, LF,
// CRLF, in any combination — the data ends at CRLF "." CRLF exactly where
// a line-based reader ends it (the CR case used to never end, so the
// sender waited for the DATA timeout), and a bare-LF "\n.\n" never ends
// it.
func TestDataEndAfterCR(t *testing.T) {
	ends := []string{"", "\r", "\n", "\r\n", "\r\r", "\n\n", "\n\r", "\r\r\r", "\r\n\r", "\n\r\r", "\r\n\r\n"}
	for _, pre := range ends {
		for _, dot := range []string{"", "."} {
			in := "Subject: x\r\n\r\n" + dot + "text" + pre + "\r\n.\r\nNEXT COMMAND\r\n"
			got, n, ended := readData(in)
			want, wn, wended := lineReference(in)
			if got != want || n != wn || ended != wended {
				t.Errorf("%q: read %q, consumed %d, ended %v; want %q, %d, %v", in, got, n, ended, want, wn, wended)
			}
			if !ended {
				t.Errorf("%q: the data never ended", in)
			}
		}
	}
	for _, in := range []string{"a\n.\nb\r\n", "a\r.\rb\r\n", "a\n.\r\nb\r\n", "a\r\n.\nb\r\n"} {
		if _, _, ended := readData(in); ended {
			t.Errorf("%q ended the data: a bare LF or CR must not make an end marker", in)
		}
	}
}

// FuzzDataEnd compares the DATA reader with the line-based reference:
// the same end point, the same bytes after dot-unstuffing.
func FuzzDataEnd(f *testing.F) {
	for _, s := range []string{"a\r\r\n.\r\n", ".\r\r\n.\r\n", "..\r\n.\r\n", "a\n.\n", ".\rx\r\n.\r\n", "\r\n.\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, n, ended := readData(in)
		want, wn, wended := lineReference(in)
		if ended != wended || (ended && (got != want || n != wn)) {
			t.Fatalf("%q: read %q, consumed %d, ended %v; reference %q, %d, %v", in, got, n, ended, want, wn, wended)
		}
	})
}
