package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestSubscribeByEmail: mail to -join gets a confirmation at the sink; an
// ordinary reply to it subscribes and brings a welcome; a forged subscribe
// of another address only mails that address.
func TestSubscribeByEmail(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org")
	smtp := s.ready["smtp"]
	waitMail := func(rcpt, contains string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for _, m := range sink.Messages() {
				if m.To[0] == rcpt && strings.Contains(string(m.Data), contains) {
					return string(m.Data)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no mail to %s containing %q", rcpt, contains)
		return ""
	}
	if out, code := swaks(t, smtp, "--to", "dev-join@lists.example.org", "--from", "bob@example.org"); code != 0 {
		t.Fatalf("join refused:\n%s", out)
	}
	conf := waitMail("bob@example.org", "Subject: confirm ")
	addr := regexp.MustCompile(`Reply-To: (dev-confirm\+[a-z2-7]+@lists\.example\.org)`).FindStringSubmatch(conf)
	if addr == nil {
		t.Fatalf("confirmation without a reply address:\n%s", conf)
	}
	if out, code := swaks(t, smtp, "--to", addr[1], "--from", "bob@example.org", "--header", "Subject: Re: confirm"); code != 0 {
		t.Fatalf("confirmation reply refused:\n%s", out)
	}
	waitMail("bob@example.org", "Welcome to dev@lists.example.org")
	if ms := mustRun(t, env, "member", "ls", "dev@lists.example.org"); !strings.Contains(ms, "bob@example.org") {
		t.Errorf("bob is not a member after confirming:\n%s", ms)
	}
	if out, code := swaks(t, smtp, "--to", "dev-request@lists.example.org", "--from", "mallory@example.net",
		"--body", "subscribe victim@example.org"); code != 0 {
		t.Fatalf("request refused:\n%s", out)
	}
	waitMail("victim@example.org", "Subject: confirm ")
	waitMail("mallory@example.net", "A confirmation was sent to victim@example.org")
	if ms := mustRun(t, env, "member", "ls", "dev@lists.example.org"); strings.Contains(ms, "victim@") {
		t.Error("a forged subscribe took effect")
	}
	s.stop()
}

// TestOwnerByEmail: against the real binary, a forged owner command is
// refused, the Approved: password and the challenge both work, a held
// post approved by replying to its notice is archived and delivered, and
// unsubscribing by email works; a reused code is refused.
func TestOwnerByEmail(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr)
	s := startServer(t, env)
	smtp := s.ready["smtp"]
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "moderated", "--owner", "owner@example.org")
	if r := run(t, env, "sekrit-password\n", "list", "set", "dev@lists.example.org", "--moderator-password", "-"); r.code != 0 {
		t.Fatalf("set password: %s", r.stderr)
	}
	seen := map[string]int{}
	next := func(rcpt, contains string) string { // the next new mail to rcpt containing contains
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			n := 0
			for _, m := range sink.Messages() {
				if m.To[0] != rcpt || !strings.Contains(string(m.Data), contains) {
					continue
				}
				if n++; n > seen[rcpt+contains] {
					seen[rcpt+contains] = n
					return string(m.Data)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no new mail to %s containing %q", rcpt, contains)
		return ""
	}
	members := func() string { return mustRun(t, env, "member", "ls", "dev@lists.example.org") }
	replyTo := regexp.MustCompile(`Reply-To: (dev-confirm\+[a-z2-7]+@lists\.example\.org)`)
	send := func(args ...string) {
		t.Helper()
		if out, code := swaks(t, smtp, args...); code != 0 {
			t.Fatalf("swaks %v refused:\n%s", args, out)
		}
	}

	send("--to", "dev-request@lists.example.org", "--from", "mallory@example.net", "--body", "add mallory@example.net")
	next("mallory@example.net", "Only the list's owners")
	send("--to", "dev-request@lists.example.org", "--from", "owner@example.org", "--header", "Approved: sekrit-password", "--body", "add carol@example.org")
	next("owner@example.org", "add carol@example.org: added")
	send("--to", "dev-request@lists.example.org", "--from", "owner@example.org", "--body", "add dave@example.org")
	challenge := replyTo.FindStringSubmatch(next("owner@example.org", "Reply to this message to run these commands"))
	send("--to", challenge[1], "--from", "owner@example.org", "--header", "Subject: Re: confirm")
	next("owner@example.org", "add dave@example.org: added")
	if ms := members(); !strings.Contains(ms, "carol@") || !strings.Contains(ms, "dave@") || strings.Contains(ms, "mallory@") {
		t.Errorf("members:\n%s", ms)
	}

	send("--to", "dev@lists.example.org", "--from", "carol@example.org", "--header", "Subject: needs a moderator")
	held := replyTo.FindStringSubmatch(next("owner@example.org", "is waiting for a moderator"))
	send("--to", held[1], "--from", "owner@example.org", "--header", "Subject: Re: held")
	next("dave@example.org", "Subject: needs a moderator")
	if posts := archiveLs(t, env, "dev@lists.example.org"); len(posts) != 1 {
		t.Errorf("archive after approval by reply: %+v", posts)
	}
	send("--to", held[1], "--from", "owner@example.org", "--header", "Subject: Re: held")
	next("owner@example.org", "already used")

	send("--to", "dev-leave@lists.example.org", "--from", "carol@example.org")
	bye := replyTo.FindStringSubmatch(next("carol@example.org", "Subject: confirm "))
	send("--to", bye[1], "--from", "carol@example.org")
	next("carol@example.org", "is unsubscribed from dev@lists.example.org")
	if strings.Contains(members(), "carol@") {
		t.Error("carol is still a member")
	}
	s.stop()
}

// TestProcessorsWithoutDelivery: a process that does not deliver
// (delivery.workers = 0, say an intake-only front) still answers command
// mail; its reply waits in the queue for a process that delivers, which
// it wakes.
func TestProcessorsWithoutDelivery(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	dsn := pgtest.NewDSN(t)
	intake := startServer(t, baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+dsn, "PARLEY_RELAY=smtp://"+sink.Addr,
		"PARLEY_DELIVERY_WORKERS=0"))
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+dsn, "PARLEY_RELAY=smtp://"+sink.Addr)
	mustRun(t, env, "list", "create", "dev@lists.example.org")
	if out, code := swaks(t, intake.ready["smtp"], "--to", "dev-join@lists.example.org", "--from", "bob@example.org"); code != 0 {
		t.Fatalf("join refused:\n%s", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(intake.stderr.String(), "event=challenge_sent") {
		if time.Now().After(deadline) {
			t.Fatalf("the non-delivering process did not answer the join request; its log:\n%s", intake.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("%d messages sent by a process without delivery workers", n)
	}
	startServer(t, env) // a process that delivers
	deadline = time.Now().Add(30 * time.Second)
	for delivered := false; !delivered; time.Sleep(50 * time.Millisecond) {
		for _, m := range sink.Messages() {
			delivered = delivered || m.To[0] == "bob@example.org" && strings.Contains(string(m.Data), "Subject: confirm ")
		}
		if !delivered && time.Now().After(deadline) {
			t.Fatalf("the confirmation was not delivered by the other process: %d messages", len(sink.Messages()))
		}
	}
}
