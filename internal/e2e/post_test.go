package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// swaks runs the swaks SMTP client against addr and returns its transcript
// and exit status (0: accepted; 23-25: refused at RCPT/DATA).
func swaks(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	path, err := exec.LookPath("swaks")
	if err != nil {
		t.Fatal("swaks is not installed (apt-get install swaks); .ci/run installs it")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"--server", addr, "--helo", "client.example", "--timeout", "30"}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

type lsLine struct {
	Article   int64  `json:"article"`
	MessageID string `json:"message_id"`
	Thread    int64  `json:"thread"`
	Parent    *int64 `json:"parent"`
	Subject   string `json:"subject"`
}

func archiveLs(t *testing.T, env []string, list string) []lsLine {
	t.Helper()
	var out []lsLine
	sc := bufio.NewScanner(strings.NewReader(mustRun(t, env, "archive", "ls", list, "--json")))
	for sc.Scan() {
		var l lsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("archive ls --json line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestPostWithSwaks is the posting path end to end with a real client:
// a member's post is archived, threaded and queued; a non-member's is
// held; an unknown list is refused at RCPT.
func TestPostWithSwaks(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	smtp := s.ready["smtp"]
	if smtp == "" {
		t.Fatalf("readiness line has no smtp listener: %v", s.ready)
	}
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--owner", "owner@example.org", "--post-policy", "members")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "bob@example.org", "carol@example.org")

	out, code := swaks(t, smtp, "--to", "dev@lists.example.org", "--from", "bob@example.org",
		"--header", "Subject: How do I build parley?", "--header", "Message-Id: <q1@example.org>", "--body", "Is there a Makefile?")
	if code != 0 {
		t.Fatalf("member post refused (exit %d):\n%s", code, out)
	}
	out, code = swaks(t, smtp, "--to", "dev@lists.example.org", "--from", "carol@example.org",
		"--header", "Subject: Re: How do I build parley?", "--header", "In-Reply-To: <q1@example.org>", "--body", "make run")
	if code != 0 {
		t.Fatalf("reply refused (exit %d):\n%s", code, out)
	}
	posts := archiveLs(t, env, "dev@lists.example.org")
	if len(posts) != 2 || posts[1].Parent == nil || *posts[1].Parent != 1 || posts[0].Thread != posts[1].Thread {
		t.Errorf("archive after a question and a reply: %+v", posts)
	}

	out, code = swaks(t, smtp, "--to", "dev@lists.example.org", "--from", "eve@example.net", "--header", "Subject: buy now")
	if code != 0 {
		t.Fatalf("non-member post: exit %d (want accepted and held):\n%s", code, out)
	}
	if held := mustRun(t, env, "held", "ls", "dev@lists.example.org"); !strings.Contains(held, "eve@example.net") {
		t.Errorf("held ls = %q, want eve's post", held)
	}
	out, code = swaks(t, smtp, "--to", "nosuchlist@lists.example.org", "--from", "bob@example.org")
	if code == 0 || !strings.Contains(out, "550 5.1.1") {
		t.Errorf("unknown list: exit %d, transcript:\n%s", code, out)
	}
	if _, body := get(t, "http://"+s.ready["http"]+"/metrics"); !strings.Contains(body, `parley_intake_messages_total{outcome="accepted"} 2`) ||
		!strings.Contains(body, `parley_intake_messages_total{outcome="held"} 1`) {
		t.Errorf("/metrics lacks the intake counts:\n%s", grepLines(body, "parley_intake"))
	}
	// The held post approved through the CLI joins the archive.
	var hs []struct{ ID int64 }
	json.Unmarshal([]byte(mustRun(t, env, "held", "ls", "dev@lists.example.org", "--json")), &hs)
	if len(hs) != 1 {
		t.Fatalf("held posts: %+v", hs)
	}
	mustRun(t, env, "held", "approve", fmt.Sprint(hs[0].ID))
	if posts := archiveLs(t, env, "dev@lists.example.org"); len(posts) != 3 {
		t.Errorf("after approval: %d posts, want 3", len(posts))
	}
	s.stop()
}

// TestConnectionCutMidTransaction: the database connection of an intake
// transaction is killed while the transaction waits. Whether a cut
// transaction committed is unknown to intake, so it asks again (writing is
// idempotent): once the database lets it, the post is stored, once, and
// the client gets 250; nothing is left half-written or doubled.
func TestConnectionCutMidTransaction(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDSN(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+dsn)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open")
	admin, err := db.Open(t.Context(), dsn, db.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Hold the list row so intake blocks inside its transaction.
	tx := admin.MustBeginTx(t.Context(), nil)
	tx.MustExec(`SELECT 1 FROM lists WHERE address = 'dev@lists.example.org' FOR UPDATE`)
	done := make(chan string, 1)
	go func() {
		out, _ := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "a@example.org",
			"--header", "Message-Id: <cut@example.org>", "--header", "Subject: cut")
		done <- out
	}()
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		admin.GetContext(t.Context(), &pid, `SELECT coalesce(max(pid), 0) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%archive_post%'`)
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("intake never blocked on the list row")
	}
	admin.MustExec(`SELECT pg_terminate_backend($1)`, pid)
	time.Sleep(500 * time.Millisecond) // intake asks again, and waits for the row
	tx.Rollback()
	if out := <-done; !strings.Contains(out, "<-  250 2.0.0 OK") || strings.Contains(out, "<** ") {
		t.Errorf("cut connection: transcript\n%s\nwant 250 once the database answers", out)
	}
	var n int
	admin.GetContext(t.Context(), &n, `SELECT (SELECT count(*) FROM messages) * 10 + (SELECT count(*) FROM outbound)`)
	if n != 11 {
		t.Errorf("messages*10 + outbound jobs = %d, want 11 (one post, one job): half-written or doubled", n)
	}
	if posts := archiveLs(t, env, "dev@lists.example.org"); len(posts) != 1 || posts[0].Article != 1 {
		t.Errorf("archive: %+v, want article 1 only", posts)
	}
	s.stop()
}

// TestImportExportRoundTrip: import an mbox, export it, import the export
// into another list and export again: the raw bytes of every post and the
// two exports are identical.
func TestImportExportRoundTrip(t *testing.T) {
	t.Parallel()
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t))
	mustRun(t, env, "list", "create", "a@lists.example.org")
	mustRun(t, env, "list", "create", "b@lists.example.org")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mbox")
	os.WriteFile(src, []byte(sampleMbox()), 0o600)
	out := mustRun(t, env, "archive", "import", "a@lists.example.org", src)
	if !strings.Contains(out, "imported 4, duplicates 1, unparseable 1") {
		t.Errorf("first import: %q", out)
	}
	first := mustRun(t, env, "archive", "export", "a@lists.example.org")
	exp := filepath.Join(dir, "a.mbox")
	os.WriteFile(exp, []byte(first), 0o600)
	mustRun(t, env, "archive", "import", "b@lists.example.org", exp)
	second := mustRun(t, env, "archive", "export", "b@lists.example.org")
	if first != second {
		t.Errorf("exports differ:\n--- a\n%s\n--- b\n%s", first, second)
	}
	for article := 1; article <= 4; article++ {
		a := mustRun(t, env, "archive", "show", "a@lists.example.org", fmt.Sprint(article))
		b := mustRun(t, env, "archive", "show", "b@lists.example.org", fmt.Sprint(article))
		if a != b || !strings.HasSuffix(a, "\r\n") {
			t.Errorf("article %d differs after the round trip:\n%q\n%q", article, a, b)
		}
	}
	if again := mustRun(t, env, "archive", "import", "a@lists.example.org", exp); !strings.Contains(again, "imported 0, duplicates 4") {
		t.Errorf("re-import: %q", again)
	}
}

func sampleMbox() string {
	var b bytes.Buffer
	b.WriteString("From alice@example.org Mon Jan  5 10:00:00 2015\n" +
		"From: alice@example.org\nSubject: first\nDate: Mon, 5 Jan 2015 10:00:00 +0000\nMessage-ID: <one@example.org>\n\n" +
		">From the start of a line\n>>From quoted deeper\nbody\n\n")
	b.WriteString("From bob@example.org Mon Jan  5 11:00:00 2015\n" +
		"From: bob@example.org\nSubject: Re: first\nIn-Reply-To: <one@example.org>\nMessage-ID: <two@example.org>\n\nreply\n\n")
	b.WriteString("From carol@example.org Mon Jan  5 12:00:00 2015\n" +
		"From: carol@example.org\nSubject: no message id\n\nstill archived\n\n")
	b.WriteString("From alice@example.org Mon Jan  5 10:00:00 2015\n" +
		"From: alice@example.org\nSubject: first\nDate: Mon, 5 Jan 2015 10:00:00 +0000\nMessage-ID: <one@example.org>\n\n" +
		">From the start of a line\n>>From quoted deeper\nbody\n\n")
	b.WriteString("From broken@example.org Mon Jan  5 13:00:00 2015\nthis is not a header\n\nbody\n\n")
	b.WriteString("From dave@example.org Mon Jan  5 14:00:00 2015\n" +
		"From: dave@example.org\nSubject: last\nMessage-ID: <four@example.org>\n\nend\n")
	return b.String()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDelivery: a post reaches every member on several domains through a
// smarthost (an in-test sink on loopback), one copy each with its VERP
// return path and the list's headers; with the default file relay, the
// copies land in the outbox.
func TestDelivery(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open", "--subject-prefix", "[dev]")
	rcpts := []string{"a@one.example", "b@one.example", "c@two.example", "d@three.example"}
	mustRun(t, env, append([]string{"member", "add", "--quiet", "dev@lists.example.org"}, rcpts...)...)
	txtName, txtValue := parseTXT(t, mustRun(t, env, "dkim", "keygen", "lists.example.org", "--selector", "s1"))
	if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "x@example.org",
		"--header", "Subject: to everyone"); code != 0 {
		t.Fatalf("post refused:\n%s", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sink.Messages()) < len(rcpts) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := map[string]bool{}
	for _, m := range sink.Messages() {
		if len(m.To) != 1 || !strings.HasPrefix(m.From, "dev-bounces+") || !strings.Contains(string(m.Data), "Subject: [dev] to everyone\r\n") {
			t.Errorf("copy %v from %q:\n%s", m.To, m.From, m.Data)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
			if name != txtName {
				return nil, fmt.Errorf("no TXT record %s", name)
			}
			return []string{txtValue}, nil
		}})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Errorf("copy to %v: DKIM verification: %v %+v", m.To, err, vs)
		}
		got[m.To[0]] = true
	}
	for _, r := range rcpts {
		if !got[r] {
			t.Errorf("%s got no copy", r)
		}
	}
	if n := len(sink.Messages()); n != len(rcpts) {
		t.Errorf("%d copies, want %d", n, len(rcpts))
	}
	s.stop()

	// The development default: files in the outbox.
	data := dataDir(t)
	env = baseEnv(data)
	s = startServer(t, env)
	mustRun(t, env, "member", "add", "--quiet", "demo@localhost", "reader@example.org")
	if out, code := swaks(t, s.ready["smtp"], "--to", "demo@localhost", "--from", "x@example.org"); code != 0 {
		t.Fatalf("post to the demo list refused:\n%s", out)
	}
	files := waitOutbox(t, data, 1)
	b, _ := os.ReadFile(files[0])
	if !strings.HasPrefix(string(b), "Return-Path: <demo-bounces+reader=example.org@localhost>\r\nDelivered-To: reader@example.org\r\n") {
		t.Errorf("outbox copy starts %q", string(b)[:min(len(b), 200)])
	}
	s.stop()
}

// parseTXT reads `name. IN TXT "part" "part"` as printed by dkim keygen.
func parseTXT(t *testing.T, line string) (name, value string) {
	t.Helper()
	name, rest, ok := strings.Cut(strings.TrimSpace(line), ". IN TXT ")
	if !ok {
		t.Fatalf("dkim keygen printed %q", line)
	}
	for _, part := range strings.Split(rest, "\" \"") {
		value += strings.Trim(part, "\"")
	}
	return name, value
}

// TestDeliveryRetries: a relay answering 451 then 250 gets the copy on the
// retry; a 550 for one recipient fails that one only.
func TestDeliveryRetries(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	var slowRefusals atomic.Int32
	sink.SetRefuse(func(rcpt string) *smtp.SMTPError {
		switch rcpt {
		case "slow@example.net":
			if slowRefusals.Add(1) == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try again"}
			}
		case "gone@example.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr,
		"PARLEY_DELIVERY_RETRY_FIRST=200ms", "PARLEY_DELIVERY_RETRY_MAX=1s")
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "ok@example.org", "slow@example.net", "gone@example.com")
	if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "x@example.org"); code != 0 {
		t.Fatalf("post refused:\n%s", out)
	}
	got := func() map[string]int {
		m := map[string]int{}
		for _, msg := range sink.Messages() {
			m[msg.To[0]]++
		}
		return m
	}
	deadline := time.Now().Add(30 * time.Second)
	for got()["slow@example.net"] == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // time for a wrong extra copy to show up
	if g := got(); g["ok@example.org"] != 1 || g["slow@example.net"] != 1 || g["gone@example.com"] != 0 {
		t.Errorf("copies per recipient %v, want ok and slow once each, gone never", g)
	}
	if n := slowRefusals.Load(); n < 2 {
		t.Errorf("slow@ was tried %d times, want a retry", n)
	}
	s.stop()
}
