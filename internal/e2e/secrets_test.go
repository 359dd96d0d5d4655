package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestNoSecretsInLogs drives the real binary, at debug log level, through
// everything that handles a secret — a smarthost password that is first
// refused, a database password, a moderator password (right and wrong),
// archive passwords over IMAP (right and wrong), a confirmation code —
// and then looks for each secret in everything parley wrote or answered:
// its log, CLI errors, SMTP replies and IMAP responses.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	const relayPw, modPw, wrongModPw, wrongIMAPPw = "RelayPw-x7Secret", "ModPw-k2Secret", "WrongModPw-q9Secret", "WrongImapPw-z3Secret"
	secrets := []string{relayPw, modPw, wrongModPw, wrongIMAPPw}
	sink := smtpsink.Start(t)
	sink.RequireAuth("relay", "not-what-parley-has")
	dsn := pgtest.NewDSN(t)
	if !strings.Contains(dsn, "://") { // trust authentication ignores it, the logs must too
		dsn += " password=DbPw-m4Secret"
		secrets = append(secrets, "DbPw-m4Secret")
	}
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+dsn, "PARLEY_RELAY=smtp://relay:"+relayPw+"@"+sink.Addr,
		"PARLEY_LOG_LEVEL=debug", "PARLEY_DELIVERY_RETRY_FIRST=1s", "PARLEY_DELIVERY_RETRY_MAX=2s")
	var said strings.Builder // everything parley wrote or answered
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--owner", "owner@example.org")
	if r := run(t, env, modPw+"\n", "list", "set", "dev@lists.example.org", "--moderator-password", "-"); r.code != 0 {
		t.Fatalf("set password: %s", r.stderr)
	}
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "bob@example.org")
	archivePw := strings.TrimSpace(mustRun(t, env, "member", "password", "dev@lists.example.org", "bob@example.org"))
	secrets = append(secrets, archivePw)
	said.WriteString(run(t, env, "", "config", "check").stdout)

	for _, args := range [][]string{
		{"--to", "dev@lists.example.org", "--from", "bob@example.org"},
		{"--to", "dev-request@lists.example.org", "--from", "owner@example.org", "--header", "Approved: " + wrongModPw, "--body", "add carol@example.org"},
		{"--to", "dev-request@lists.example.org", "--from", "owner@example.org", "--header", "Approved: " + modPw, "--body", "add dave@example.org"},
		{"--to", "dev-join@lists.example.org", "--from", "erin@example.org"},
	} {
		out, _ := swaks(t, s.ready["smtp"], args...)
		said.WriteString(serverLines(out))
	}
	for _, pw := range []string{wrongIMAPPw, archivePw} {
		c, err := imapclient.DialInsecure(s.ready["imap"], nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("bob@example.org", pw).Wait(); err != nil {
			said.WriteString(err.Error())
		}
		c.Close()
	}
	time.Sleep(3 * time.Second) // deliveries are refused at the relay's AUTH, and logged
	sink.RequireAuth("relay", relayPw)
	code := confirmationCode(t, sink, "erin@example.org")
	secrets = append(secrets, code)
	// (Not kept: the replies to this transaction echo the client's own
	// recipient address, code included.)
	swaks(t, s.ready["smtp"], "--to", "dev-confirm+"+code+"@lists.example.org", "--from", "erin@example.org")
	waitMember(t, env, "erin@example.org")
	bad := run(t, baseEnv(dataDir(t), "PARLEY_DATABASE_URL=postgres://parley:DbPw2-r8Secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"),
		"", "list", "ls")
	secrets = append(secrets, "DbPw2-r8Secret")
	said.WriteString(bad.stdout + bad.stderr)
	s.stop()
	said.WriteString(s.stderr.String())

	if !strings.Contains(said.String(), "relay") || !strings.Contains(said.String(), "535") {
		t.Errorf("the refused relay login was not logged; the test would prove nothing about it")
	}
	for _, secret := range secrets {
		if i := strings.Index(said.String(), secret); i >= 0 {
			t.Errorf("secret %q appears in parley's output: …%s…", secret, said.String()[max(0, i-200):min(len(said.String()), i+50)])
		}
	}
}

// serverLines keeps what the server said in a swaks transcript (lines
// "<-", "<~", "<**"), not what swaks sent.
func serverLines(transcript string) string {
	var b strings.Builder
	for _, l := range strings.Split(transcript, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "<") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

var confirmCode = regexp.MustCompile(`Reply-To: dev-confirm\+([a-z2-7]+)@lists\.example\.org`)

// confirmationCode waits for the confirmation mailed to rcpt.
func confirmationCode(t *testing.T, sink *smtpsink.Sink, rcpt string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, m := range sink.Messages() {
			if sub := confirmCode.FindSubmatch(m.Data); sub != nil && m.To[0] == rcpt {
				return string(sub[1])
			}
		}
	}
	t.Fatalf("no confirmation mailed to %s", rcpt)
	return ""
}

// waitMember waits for addr to be a member of dev@lists.example.org.
func waitMember(t *testing.T, env []string, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(mustRun(t, env, "member", "ls", "dev@lists.example.org"), addr) {
			return
		}
	}
	t.Fatalf("%s did not become a member", addr)
}
