package commands_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEveryDecisionLoggedOnce: each command mail gives exactly one log
// line per decision, with the event that says what happened, the list and
// the mail's Message-ID; confirmation codes and passwords never appear.
func TestEveryDecisionLoggedOnce(t *testing.T) {
	t.Parallel()
	r := setup(t)
	var logs bytes.Buffer
	r.p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	r.p.DailyReplies = 6
	r.owner("owner@example.org")
	// send is r.receive without a subject, which would be a command too.
	send := func(kind, detail, from, headers, body string) {
		t.Helper()
		raw := fmt.Sprintf("From: %s\r\nMessage-ID: <%d@example.org>\r\n%s\r\n%s", from, time.Now().UnixNano(), headers, body)
		r.d.MustExec(`INSERT INTO inbound (list_id, kind, rcpt, detail, mail_from, content_key, raw)
			VALUES ($1, $2, 'x', $3, $4, gen_random_uuid()::text::bytea, $5)`, r.l.ID, kind, detail, from, []byte(raw))
		if _, err := r.p.ProcessAll(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var secrets []string
	events := regexp.MustCompile(`event=\S+`)
	expect := func(name string, want ...string) {
		t.Helper()
		got := logs.String()
		logs.Reset()
		if n := len(events.FindAllString(got, -1)); n != 1 {
			t.Errorf("%s: %d lines %q, want one", name, n, got)
		}
		for _, w := range append(want, "list=dev@lists.example.org", "msg_id=") {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", name, got, w)
			}
		}
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Errorf("%s: %q gives away %q", name, got, s)
			}
		}
	}

	send("join", "", "bob@example.org", "", "")
	expect("join", "event=challenge_sent", "rcpt=bob@example.org", "action=subscribe")
	tok := token(t, r.mailTo("bob@example.org"))
	secrets = append(secrets, tok)
	send("confirm", tok, "bob@example.org", "", "")
	expect("confirm", "event=subscribed", "rcpt=bob@example.org")
	send("request", "", "carol@example.org", "", "confirm "+tok+"\n")
	expect("used code", "event=command", "command=confirm", `result="that confirmation code was already used."`)
	send("request", "", "carol@example.org", "", "help\n")
	expect("help", "event=command", "command=help", "from=carol@example.org", "result=")
	send("request", "", "carol@example.org", "", "who\n")
	expect("who", "event=command", "command=who", `result="The member list of dev@lists.example.org is not shown to you."`)
	send("request", "", "carol@example.org", "", "info\n")
	expect("info", "event=command", "command=info")
	bobs := len(r.mailTo("bob@example.org"))
	send("leave", "", "bob@example.org", "", "")
	expect("leave", "event=challenge_sent", "rcpt=bob@example.org", "action=unsubscribe")
	leave := token(t, r.mailTo("bob@example.org")[bobs:])
	secrets = append(secrets, leave)
	send("confirm", leave, "bob@example.org", "", "")
	expect("confirm leave", "event=unsubscribed", "rcpt=bob@example.org", "via=email")

	secrets = append(secrets, "guessed-password")
	send("request", "", "mallory@example.net", "Approved: guessed-password\r\n", "add mallory@example.net\n")
	expect("wrong password", "event=owner_refused", `reason="wrong password"`, "from=mallory@example.net")
	send("request", "", "owner@example.org", "", "add dave@example.org\n")
	expect("owner challenge", "event=challenge_sent", "rcpt=owner@example.org", "action=command")
	before := len(r.mailTo("owner@example.org"))
	send("confirm", token(t, r.mailTo("owner@example.org")), "owner@example.org", "", "")
	expect("owner command", "event=owner_command", "command=add", "by=confirmed:owner@example.org", `result="added; a welcome was sent"`)
	if len(r.mailTo("owner@example.org")) == before {
		t.Error("no reply to the owner's confirmation")
	}

	send("owner", "", "erin@example.org", "", "hello owners\n")
	expect("owner mail", "event=owner_forwarded", "from=erin@example.org")

	// carol has had four replies. A request costs her one mail (the
	// confirmation carries the answer), so two more reach the limit; the
	// next request is refused and logged once, though the reply to it is
	// refused too.
	send("request", "", "carol@example.org", "", "subscribe\n")
	expect("fifth mail", "event=challenge_sent", "rcpt=carol@example.org")
	send("request", "", "carol@example.org", "", "subscribe\n")
	expect("limit reached", "event=challenge_sent", "rcpt=carol@example.org")
	send("request", "", "carol@example.org", "", "subscribe\n")
	expect("over the limit", "event=reply_limited", "rcpt=carol@example.org")
}
