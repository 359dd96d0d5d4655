package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestPrivateListInvisible: an outsider learns nothing about a private
// list's members or archive. Command mail ("lists", "who") leaves it and
// its roster out; over IMAP it answers exactly as a list that does not
// exist; HTTP pages never name it.
func TestPrivateListInvisible(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "hidden@lists.example.org", "--archive", "private")
	mustRun(t, env, "member", "add", "--quiet", "hidden@lists.example.org", "carol@example.org")
	mustRun(t, env, "list", "create", "open@lists.example.org")
	if out, code := swaks(t, s.ready["smtp"], "--to", "hidden@lists.example.org", "--from", "carol@example.org",
		"--header", "Subject: members only"); code != 0 {
		t.Fatalf("member's post refused:\n%s", out)
	}
	ask := func(to, body string) string { // mails a command as an outsider and returns the reply
		t.Helper()
		before := len(outsiderMail(sink))
		if out, code := swaks(t, s.ready["smtp"], "--to", to, "--from", "mallory@example.net", "--body", body); code != 0 {
			t.Fatalf("%s refused:\n%s", body, out)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got := outsiderMail(sink); len(got) > before {
				return got[before]
			}
		}
		t.Fatalf("no reply to %q", body)
		return ""
	}
	if got := ask("open-request@lists.example.org", "lists"); !strings.Contains(got, "open@lists.example.org") ||
		strings.Contains(got, "hidden@") {
		t.Errorf("'lists' must name the public list and not the private one:\n%s", got)
	}
	if got := ask("hidden-request@lists.example.org", "who"); strings.Contains(got, "carol") {
		t.Errorf("'who' from an outsider shows the roster:\n%s", got)
	}

	hidden, missing := imapAnswers(t, s.ready["imap"], "hidden@lists.example.org"), imapAnswers(t, s.ready["imap"], "nosuch@lists.example.org")
	if got, want := strings.ReplaceAll(hidden, "hidden@", "X@"), strings.ReplaceAll(missing, "nosuch@", "X@"); got != want {
		t.Errorf("IMAP tells a private list from a missing one:\nprivate: %s\nmissing: %s", got, want)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/unsubscribe/aGlkZGVu"} {
		if _, body := get(t, "http://"+s.ready["http"]+path); strings.Contains(body, "hidden") || strings.Contains(body, "carol") {
			t.Errorf("GET %s names the private list or its member:\n%s", path, body)
		}
	}
}

// outsiderMail is what the sink has for mallory@example.net, in order.
func outsiderMail(sink *smtpsink.Sink) []string {
	var got []string
	for _, m := range sink.Messages() {
		if m.To[0] == "mallory@example.net" {
			got = append(got, string(m.Data))
		}
	}
	return got
}

// imapAnswers is what an anonymous reader is told about mailbox: SELECT,
// EXAMINE and STATUS errors (or results), and whether LIST shows it.
func imapAnswers(t *testing.T, addr, mailbox string) string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("anonymous", "x").Wait(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_, err = c.Select(mailbox, nil).Wait()
	b.WriteString("SELECT: " + errText(err) + "\n")
	_, err = c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	b.WriteString("EXAMINE: " + errText(err) + "\n")
	_, err = c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	b.WriteString("STATUS: " + errText(err) + "\n")
	ls, err := c.List("", "*", nil).Collect()
	for _, l := range ls {
		if l.Mailbox == mailbox {
			b.WriteString("LIST shows it\n")
		}
	}
	b.WriteString("LIST: " + errText(err) + "\n")
	return b.String()
}

func errText(err error) string {
	if err == nil {
		return "OK"
	}
	return err.Error()
}
