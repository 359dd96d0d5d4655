package smtpin_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestHostileMessages replays hostile messages and envelopes: each gets
// the right reply, what is accepted is archived, and the server goes on
// taking mail.
func TestHostileMessages(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	var nest, refs strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&nest, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	refs.WriteString("References:")
	for i := range 100000 {
		fmt.Fprintf(&refs, " <r%d@x>", i)
	}
	folded := strings.ReplaceAll(refs.String(), "> <", ">\r\n <")
	tests := []struct{ name, body, want string }{
		{"NUL bytes in the body", "Subject: nul\r\n\r\nbody\x00with nul\r\n", "250"},
		{"invalid UTF-8 in a header", "Subject: \xff\xfe bad\r\n\r\nbody\r\n", "250"},
		{"all headers, no body", "Subject: only headers\r\nX-A: b\r\n", "250"},
		{"multipart whose boundary never appears", "Subject: nb\r\nContent-Type: multipart/mixed; boundary=never\r\n\r\nno parts\r\n", "250"},
		{"MIME nested 1,000 deep", "Subject: deep\r\n" + nest.String() + "x\r\n", "554 5.6.0"},
		{"References with 100k ids on one line", "Subject: refs\r\n" + refs.String() + "\r\n\r\nbody\r\n", "554 5.6.0"},
		{"References with 100k ids folded", "Subject: refs\r\n" + folded + "\r\n\r\nbody\r\n", "552 5.3.4"},
		{"100k header fields", "Subject: f\r\n" + strings.Repeat("X-F: v\r\n", 100000) + "\r\nbody\r\n", "552 5.3.4"},
	}
	accepted := 0
	for _, tc := range tests {
		c := r.dial()
		c.envelope("x@example.org", "open@lists.example.org")
		c.send(tc.body + "\r\n.\r\n")
		if got := c.reply(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		if tc.want == "250" {
			accepted++
		}
	}
	if n := r.count(`SELECT count(*) FROM messages`); n != accepted {
		t.Errorf("%d messages archived, want the %d accepted", n, accepted)
	}

	c := r.dial()
	c.cmd("EHLO test.example", "250")
	c.cmd("MAIL FROM:<x@example.org> SIZE=2000000000", "552 5.3.4")
	c.cmd("MAIL FROM:<x@example.org>", "250")
	codes := map[string]int{}
	for range 10000 {
		c.send("RCPT TO:<open@lists.example.org>\r\n")
		codes[c.reply()[:3]]++
	}
	if codes["250"] != 10 || codes["452"] != 9990 {
		t.Errorf("10,000 RCPTs answered %v, want 10 × 250 then 452 (the limit) for the rest", codes)
	}
	c.send("DATA\r\n")
	c.expect("354")
	c.send("From: x@example.org\r\nSubject: after all that\r\n\r\nstill here\r\n.\r\n")
	c.expect("250")

	// Invalid UTF-8 in addresses: the sender is refused as a syntax
	// error, a recipient is simply not a list, and the session goes on.
	c = r.dial()
	c.cmd("EHLO test.example", "250")
	c.cmd("MAIL FROM:<\xff\xfe@example.org>", "5")
	c.cmd("MAIL FROM:<x@example.org>", "250")
	c.cmd("RCPT TO:<open\xff@lists.example.org>", "5")
	c.cmd("RCPT TO:<open@lists.example.org>", "250")
	c.cmd("DATA", "354")
	c.send("From: \xff\xfe <\xff@example.org>\r\nSubject: bad from\r\n\r\nbody\r\n.\r\n")
	c.expect("250")
}
