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
