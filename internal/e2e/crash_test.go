package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestCrashMidFanout kills parley with SIGKILL in the middle of a fan-out
// to 10,000 members, restarts it, and checks that every member receives
// the post at least once, with duplicates bounded by the copies in flight
// at the kill (at most the workers' sends plus the results not yet
// recorded, each bounded by the number of workers).
func TestCrashMidFanout(t *testing.T) {
	t.Parallel()
	const members, workers = 10000, 32
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr,
		"PARLEY_DELIVERY_LEASE=2s", fmt.Sprintf("PARLEY_DELIVERY_WORKERS=%d", workers), "PARLEY_LOG_LEVEL=warn")
	mustRun(t, env, "list", "create", "big@lists.example.org", "--post-policy", "open")
	var sb strings.Builder
	for i := range members {
		fmt.Fprintf(&sb, "m%d@d%d.example\n", i, i%7)
	}
	if r := run(t, env, sb.String(), "member", "add", "--quiet", "big@lists.example.org", "--file", "-"); r.code != 0 {
		t.Fatalf("member add: %s", r.stderr)
	}

	s := startServer(t, env)
	c, err := smtp.Dial(s.ready["smtp"])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("poster@example.org", []string{"big@lists.example.org"},
		strings.NewReader("From: poster@example.org\r\nSubject: to all\r\nMessage-ID: <crash@example.org>\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("post: %v", err)
	}
	c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for len(sink.Messages()) < members/4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	atKill := len(sink.Messages())
	if atKill >= members {
		t.Fatalf("the fan-out finished (%d copies) before the kill; nothing was tested", atKill)
	}

	s = startServer(t, env)
	distinct := func() (map[string]int, int) {
		got := map[string]int{}
		msgs := sink.Messages()
		for _, m := range msgs {
			for _, r := range m.To {
				got[r]++
			}
		}
		return got, len(msgs)
	}
	deadline = time.Now().Add(3 * time.Minute)
	got, total := distinct()
	for len(got) < members && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got, total = distinct()
	}
	s.stop()
	dups := total - len(got)
	t.Logf("killed after %d copies; afterwards %d of %d members reached, %d copies, %d duplicates (bound %d)",
		atKill, len(got), members, total, dups, 2*workers)
	if len(got) != members {
		t.Fatalf("%d of %d members received the post", len(got), members)
	}
	if dups > 2*workers {
		t.Errorf("%d duplicates, more than the %d copies that can be in flight", dups, 2*workers)
	}
}
