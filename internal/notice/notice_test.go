package notice

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRenderIsSafe: text taken from a message cannot add header fields,
// and an attached message is carried whole.
func TestRenderIsSafe(t *testing.T) {
	t.Parallel()
	attach := []byte("Subject: original\r\n\r\nbody\r\n")
	m := Message{From: "dev-owner@lists.example.org", To: "x@example.org\r\nBcc: victim@example.net",
		Subject: "held: hi\r\nBcc: victim@example.net", Text: "line 1\nline 2\n", Attach: attach}
	out := m.Render("lists.example.org", time.Unix(0, 0))
	head, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	if bytes.Contains(head, []byte("\r\nBcc:")) {
		t.Fatalf("header injection got through:\n%s", head)
	}
	for _, want := range []string{"Auto-Submitted: auto-generated\r\n", "Content-Type: multipart/mixed;", "line 1\r\nline 2\r\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("notice lacks %q:\n%s", want, out)
		}
	}
	if !bytes.Contains(out, attach) {
		t.Error("the attached message is not carried whole")
	}
}
