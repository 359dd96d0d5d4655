package commands_test

import (
	"strings"
	"testing"
)

// receiveRaw stores raw as mail to the list's -request address and
// processes it.
func (r *rig) receiveRaw(from, raw string) {
	r.t.Helper()
	r.d.MustExec(`INSERT INTO inbound (list_id, kind, rcpt, mail_from, content_key, raw)
		VALUES ($1, 'request', 'x', $2, gen_random_uuid()::text::bytea, $3)`, r.l.ID, from, []byte(raw))
	if _, err := r.p.ProcessAll(r.t.Context()); err != nil {
		r.t.Fatal(err)
	}
}

// headerOf returns the header block of a queued message.
func headerOf(msg string) string {
	if i := strings.Index(msg, "\r\n\r\n"); i >= 0 {
		return msg[:i+2]
	}
	return msg
}

// TestHostileCommandMail: line breaks hidden in encoded subjects and names
// do not become header fields of the reply (and a name that decodes to an
// address does not become the sender), and a thousand commands get one
// reply that runs the first 50.
func TestHostileCommandMail(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receiveRaw("a@example.org", "From: a@example.org\r\nSubject: =?utf-8?q?help=0D=0ABcc:_victim@example.net?=\r\n"+
		"Message-ID: <inj1@example.org>\r\n\r\nhelp\r\n")
	r.receiveRaw("b@example.org", "From: =?utf-8?q?B=0D=0ABcc:_victim@example.net?= <b@example.org>\r\nSubject: help\r\n"+
		"Message-ID: <inj2@example.org>\r\n\r\nhelp\r\n")
	for _, who := range []string{"a@example.org", "b@example.org"} {
		replies := r.mailTo(who)
		if len(replies) != 1 {
			t.Fatalf("%d replies to %s, want 1", len(replies), who)
		}
		for _, line := range strings.Split(headerOf(replies[0]), "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "bcc:") || strings.Contains(line, "\r") || strings.Contains(line, "\n") {
				t.Errorf("reply to %s has an injected header line %q", who, line)
			}
		}
	}
	if got := r.mailTo("victim@example.net"); len(got) != 0 {
		t.Errorf("the injected Bcc got %d messages", len(got))
	}

	r.receiveRaw("c@example.org", "From: c@example.org\r\nSubject: many\r\nMessage-ID: <many@example.org>\r\n\r\n"+
		strings.Repeat("info\r\n", 1000))
	replies := r.mailTo("c@example.org")
	if len(replies) != 1 {
		t.Fatalf("%d replies to a thousand commands, want 1", len(replies))
	}
	if n := strings.Count(replies[0], "> info"); n > 50 {
		t.Errorf("%d commands run from one message, want at most 50", n)
	}
}
