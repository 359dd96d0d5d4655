package e2e

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/parley-list/parley/internal/testutil/tlstest"
)

// TestIMAPReadsWhatWasPosted: a post accepted over SMTP by the real
// binary is readable over its IMAP listener, byte for byte as archived,
// and an IDLE session hears of the next post.
func TestIMAPReadsWhatWasPosted(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	if s.ready["imap"] == "" {
		t.Fatalf("readiness line has no imap listener: %v", s.ready)
	}
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--owner", "owner@example.org", "--post-policy", "open")
	if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "bob@example.org",
		"--header", "Subject: hello archive", "--body", "first post"); code != 0 {
		t.Fatalf("post refused (exit %d):\n%s", code, out)
	}

	updates := make(chan uint32, 4)
	c, err := imapclient.DialInsecure(s.ready["imap"], &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				updates <- *d.NumMessages
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("anonymous", "e2e").Wait(); err != nil {
		t.Fatalf("anonymous login: %v", err)
	}
	sel, err := c.Select("dev@lists.example.org", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Fatalf("SELECT: %d messages, want 1", sel.NumMessages)
	}
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v, %d messages", err, len(msgs))
	}
	want := mustRun(t, env, "archive", "show", "dev@lists.example.org", "1")
	if got := msgs[0].FindBodySection(body); !bytes.Equal(got, []byte(want)) {
		t.Errorf("IMAP BODY[] differs from the archive:\ngot  %q\nwant %q", got, want)
	}

	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "bob@example.org",
		"--header", "Subject: second", "--body", "second post"); code != 0 {
		t.Fatalf("second post refused (exit %d):\n%s", code, out)
	}
	select {
	case n := <-updates:
		if n != 2 {
			t.Errorf("IDLE: EXISTS %d, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Error("IDLE: no EXISTS after a new post")
	}
	idle.Close()
	idle.Wait()
	s.stop()
}

// TestIMAPOverTLS: with a certificate configured, the real binary serves
// implicit TLS on imaps.listen (in the readiness line) and offers STARTTLS
// on imap.listen.
func TestIMAPOverTLS(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	cert, key := tlstest.Files(t, t.TempDir())
	env := baseEnv(data, "PARLEY_IMAP_TLS_CERT="+cert, "PARLEY_IMAP_TLS_KEY="+key, "PARLEY_IMAPS_LISTEN=127.0.0.1:0")
	s := startServer(t, env)
	if s.ready["imaps"] == "" {
		t.Fatalf("readiness line has no imaps listener: %v", s.ready)
	}
	client := &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true, ServerName: tlstest.ServerName}}
	for name, dial := range map[string]func() (*imapclient.Client, error){
		"imaps":    func() (*imapclient.Client, error) { return imapclient.DialTLS(s.ready["imaps"], client) },
		"starttls": func() (*imapclient.Client, error) { return imapclient.DialStartTLS(s.ready["imap"], client) },
	} {
		c, err := dial()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Login("anonymous", "e2e").Wait(); err != nil {
			t.Errorf("%s: anonymous login: %v", name, err)
		}
		if _, err := c.Select("demo@localhost", nil).Wait(); err != nil {
			t.Errorf("%s: SELECT the demo list: %v", name, err)
		}
		c.Close()
	}
}
