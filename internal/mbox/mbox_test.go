package mbox

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, data string, f Format) []*Message {
	t.Helper()
	r := NewReader(strings.NewReader(data), f, 0)
	var ms []*Message
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return ms
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		ms = append(ms, m)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	in := "From alice@example.org Thu Nov 26 10:00:00 2026\n" +
		"Subject: one\n\nhello\n>From the start\n>>From deeper\nFrom inside without blank\n\n" +
		"From bob@example.org Thu Nov 26 11:00:00 2026\nSubject: two\n\nbye\n"
	ms := readAll(t, in, MboxRD)
	if len(ms) != 2 {
		t.Fatalf("read %d messages, want 2", len(ms))
	}
	want0 := "Subject: one\n\nhello\nFrom the start\n>From deeper\nFrom inside without blank\n"
	if got := string(ms[0].Data); got != want0 {
		t.Errorf("message 1 = %q, want %q", got, want0)
	}
	if got := string(ms[1].Data); got != "Subject: two\n\nbye\n" {
		t.Errorf("message 2 = %q", got)
	}
	if ms[0].Sender != "alice@example.org" || ms[0].Date.Hour() != 10 {
		t.Errorf("From_ line: %q %v", ms[0].Sender, ms[0].Date)
	}
	if o := readAll(t, in, MboxO); string(o[0].Data) != strings.Replace(want0, ">From deeper", ">>From deeper", 1) {
		t.Errorf("mboxo message 1 = %q", o[0].Data)
	}
	if _, err := NewReader(strings.NewReader("Subject: not mbox\n"), MboxRD, 0).Next(); !errors.Is(err, ErrNotMbox) {
		t.Errorf("non-mbox input: %v, want ErrNotMbox", err)
	}
	if ms := readAll(t, "", MboxRD); len(ms) != 0 {
		t.Errorf("empty input: %d messages", len(ms))
	}
}

// TestRoundTrip: writing mboxrd and reading it back gives the same
// messages (in LF form), whatever From_ lines they contain.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	msgs := []string{
		"Subject: a\r\n\r\nFrom here\r\n>From there\r\n>>>From far\r\n",
		"Subject: b\r\n\r\n\r\n\r\n",
		"Subject: c\r\n\r\nno final newline",
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, m := range msgs {
		if err := w.Write("x@example.org", time.Unix(0, 0), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	got := readAll(t, buf.String(), MboxRD)
	if len(got) != len(msgs) {
		t.Fatalf("read back %d messages, want %d:\n%s", len(got), len(msgs), buf.String())
	}
	for i, m := range msgs {
		want := strings.ReplaceAll(m, "\r\n", "\n")
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if string(got[i].Data) != want {
			t.Errorf("message %d = %q, want %q", i, got[i].Data, want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	in := "From a Thu Nov 26 10:00:00 2026\n" + strings.Repeat("x", 1000) + "\n\nFrom b Thu Nov 26 10:00:00 2026\nsmall\n"
	r := NewReader(strings.NewReader(in), MboxRD, 100)
	m1, _ := r.Next()
	m2, _ := r.Next()
	if m1 == nil || !m1.TooLarge || m2 == nil || m2.TooLarge || string(m2.Data) != "small\n" {
		t.Errorf("size limit: %+v %+v", m1, m2)
	}
}

// FuzzReader is the mbox reader's fuzz target: it never panics, and what
// it reads survives a write and a second read unchanged.
func FuzzReader(f *testing.F) {
	f.Add([]byte("From a Thu Nov 26 10:00:00 2026\nSubject: x\n\n>From y\n\nFrom b x\nz\n"))
	f.Add([]byte("From \n\nFrom \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), MboxRD, 1<<16)
		var first [][]byte
		for range 1000 {
			m, err := r.Next()
			if err != nil {
				break
			}
			first = append(first, m.Data)
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for _, m := range first {
			w.Write("s", time.Unix(0, 0), m)
		}
		w.Flush()
		r2 := NewReader(&buf, MboxRD, 1<<17)
		for i, want := range first {
			m, err := r2.Next()
			if err != nil {
				t.Fatalf("re-read message %d: %v", i, err)
			}
			w := bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n"))
			if len(w) > 0 && w[len(w)-1] != '\n' {
				w = append(w, '\n')
			}
			if len(bytes.Trim(w, "\n")) > 0 && !bytes.Equal(m.Data, w) {
				t.Fatalf("message %d changed: %q -> %q", i, w, m.Data)
			}
		}
	})
}
