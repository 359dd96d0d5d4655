package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// rawSMTP sends one message over a fresh connection exactly as given (no
// line-ending fixes, no dot-stuffing) and returns the reply to DATA, or the
// first refusal before it.
func rawSMTP(t *testing.T, addr, from, to, data string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	reply := func() string {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return "EOF"
			}
			if len(line) < 4 || line[3] != '-' {
				return strings.TrimSpace(line)
			}
		}
	}
	reply() // greeting
	for _, cmd := range []string{"EHLO client.example", "MAIL FROM:<" + from + ">", "RCPT TO:<" + to + ">", "DATA"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if r := reply(); r[0] != '2' && r[0] != '3' {
			return r
		}
	}
	c.Write([]byte(data + "\r\n.\r\n"))
	r := reply()
	fmt.Fprintf(c, "QUIT\r\n")
	return r
}

// TestPolicies drives the real binary through every posting policy, the
// loop markers, oversize mail, an idempotent retry and every smuggling
// vector, and then checks what the archive and the held queue hold.
func TestPolicies(t *testing.T) {
	t.Parallel()
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_SMTP_MAX_MESSAGE_BYTES=65536")
	s := startServer(t, env)
	smtp := s.ready["smtp"]
	for _, spec := range [][]string{
		{"open@lists.example.org", "open", "hold"},
		{"members@lists.example.org", "members", "hold"},
		{"strict@lists.example.org", "members", "reject"},
		{"quiet@lists.example.org", "members", "discard"},
		{"mod@lists.example.org", "moderated", "hold"},
		{"news@lists.example.org", "announce", "hold"},
	} {
		mustRun(t, env, "list", "create", spec[0], "--post-policy", spec[1], "--nonmember", spec[2], "--owner", "owner@example.org")
		mustRun(t, env, "member", "add", "--quiet", spec[0], "member@example.org")
	}
	msg := func(from, id string, extra ...string) string {
		return fmt.Sprintf("From: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n%s\r\nbody\r\n", from, id, id, strings.Join(extra, ""))
	}
	tests := []struct {
		name, to, from, data, want string
	}{
		{"open list, stranger", "open", "eve@example.net", msg("eve@example.net", "p1@x"), "250"},
		{"members list, member", "members", "member@example.org", msg("member@example.org", "p2@x"), "250"},
		{"members list, stranger held", "members", "eve@example.net", msg("eve@example.net", "p3@x"), "250"},
		{"strict list, stranger refused", "strict", "eve@example.net", msg("eve@example.net", "p4@x"), "550 5.7.1"},
		{"quiet list, stranger discarded", "quiet", "eve@example.net", msg("eve@example.net", "p5@x"), "250"},
		{"moderated list holds", "mod", "member@example.org", msg("member@example.org", "p6@x"), "250"},
		{"announce refuses members", "news", "member@example.org", msg("member@example.org", "p7@x"), "550 5.7.1"},
		{"announce takes owners", "news", "owner@example.org", msg("owner@example.org", "p8@x"), "250"},
		{"own List-Id: loop", "open", "eve@example.net", msg("eve@example.net", "p9@x", "List-Id: <open.lists.example.org>\r\n"), "250"},
		{"own X-Loop: loop", "open", "eve@example.net", msg("eve@example.net", "p10@x", "X-Loop: open@lists.example.org\r\n"), "250"},
		{"auto-reply", "open", "eve@example.net", msg("eve@example.net", "p11@x", "Auto-Submitted: auto-replied\r\n"), "250"},
		{"oversize", "open", "eve@example.net", msg("eve@example.net", "p12@x") + strings.Repeat("x", 70000), "552 5.3.4"},
		{"retry of an archived post", "open", "eve@example.net", msg("eve@example.net", "p1@x"), "250"},
	}
	for _, tc := range tests {
		if got := rawSMTP(t, smtp, tc.from, tc.to+"@lists.example.org", tc.data); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: reply %q, want %q", tc.name, got, tc.want)
		}
	}
	for i, vec := range []string{"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r"} {
		data := msg("eve@example.net", fmt.Sprintf("smuggle%d@x", i)) + "before" + vec +
			"MAIL FROM:<evil@example.org>\r\nRCPT TO:<open@lists.example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil"
		if got := rawSMTP(t, smtp, "eve@example.net", "open@lists.example.org", data); !strings.HasPrefix(got, "250") {
			t.Errorf("smuggling vector %q: reply %q", vec, got)
		}
	}
	wantArchive := map[string]int{"open": 5, "members": 1, "news": 1, "strict": 0, "quiet": 0, "mod": 0}
	for list, want := range wantArchive {
		posts := archiveLs(t, env, list+"@lists.example.org")
		if len(posts) != want {
			t.Errorf("%s: %d archived, want %d: %+v", list, len(posts), want, posts)
		}
		for _, p := range posts {
			if p.Subject == "smuggled" {
				t.Errorf("%s: a smuggled message was archived on its own", list)
			}
		}
	}
	for list, want := range map[string]int{"members": 1, "mod": 1, "open": 0} {
		out := mustRun(t, env, "held", "ls", list+"@lists.example.org")
		if n := strings.Count(out, "\n") - 1; n != want {
			t.Errorf("%s: %d held, want %d:\n%s", list, n, want, out)
		}
	}
	s.stop()
}
