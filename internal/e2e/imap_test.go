package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"strings"
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

// TestArchiveURLsResolve: the List-Archive and Archived-At fields of a
// delivered copy are IMAP URLs (RFC 5092) that this server answers: the
// host and port of its listener, the list's mailbox, its UIDVALIDITY and
// the post's UID, which fetches the archived post.
func TestArchiveURLsResolve(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	mustRun(t, env, "member", "add", "--quiet", "demo@localhost", "reader@example.org")
	if out, code := swaks(t, s.ready["smtp"], "--to", "demo@localhost", "--from", "x@example.org"); code != 0 {
		t.Fatalf("post refused:\n%s", out)
	}
	files := waitOutbox(t, data, 1)
	raw, _ := os.ReadFile(files[0])
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Trim(m.Header.Get("Archived-At"), "<>")
	u, err := url.Parse(at)
	if err != nil || u.Scheme != "imap" {
		t.Fatalf("Archived-At %q is not an imap URL (%v)", at, err)
	}
	var mailbox string
	var validity uint32
	var uid imap.UID
	if _, err := fmt.Sscanf(strings.NewReplacer(";UIDVALIDITY=", " ", "/;UID=", " ").Replace(strings.TrimPrefix(u.Path, "/")),
		"%s %d %d", &mailbox, &validity, &uid); err != nil {
		t.Fatalf("Archived-At %q: %v", at, err)
	}
	if la := strings.Trim(m.Header.Get("List-Archive"), "<>"); la != u.Scheme+"://"+u.Host+"/"+mailbox {
		t.Errorf("List-Archive %q, want the mailbox of Archived-At %q", la, at)
	}

	c, err := imapclient.DialInsecure(u.Host, nil)
	if err != nil {
		t.Fatalf("dial the URL's host %s: %v", u.Host, err)
	}
	defer c.Close()
	if err := c.Login("anonymous", "e2e").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("EXAMINE %s: %v", mailbox, err)
	}
	if sel.UIDValidity != validity {
		t.Errorf("UIDVALIDITY %d, the URL says %d", sel.UIDValidity, validity)
	}
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("UID FETCH %d: %v, %d messages", uid, err, len(msgs))
	}
	if want := mustRun(t, env, "archive", "show", "demo@localhost", fmt.Sprint(uid)); string(msgs[0].FindBodySection(body)) != want {
		t.Errorf("the URL's message differs from archived article %d", uid)
	}
}

// TestPrivateArchiveMemberLogin: a private list is invisible to anonymous
// readers; a member logs in with the password `parley member password`
// printed and reads it; the old password stops working when a new one is
// issued.
func TestPrivateArchiveMemberLogin(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "secret@lists.example.org", "--archive", "private", "--post-policy", "open")
	mustRun(t, env, "member", "add", "--quiet", "secret@lists.example.org", "carol@example.org")
	old := strings.TrimSpace(mustRun(t, env, "member", "password", "secret@lists.example.org", "carol@example.org"))
	pw := strings.TrimSpace(mustRun(t, env, "member", "password", "secret@lists.example.org", "carol@example.org"))
	if len(pw) < 20 || pw == old {
		t.Fatalf("passwords %q then %q: want two different long random ones", old, pw)
	}
	seen := func(user, pass string) (string, error) {
		c, err := imapclient.DialInsecure(s.ready["imap"], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(user, pass).Wait(); err != nil {
			return "", err
		}
		ls, err := c.List("", "%", nil).Collect()
		var names []string
		for _, l := range ls {
			names = append(names, l.Mailbox)
		}
		return strings.Join(names, " "), err
	}
	if got, err := seen("anonymous", "x"); err != nil || strings.Contains(got, "secret@") {
		t.Errorf("anonymous sees %q (err %v); the private list must not show", got, err)
	}
	if got, err := seen("carol@example.org", pw); err != nil || !strings.Contains(got, "secret@lists.example.org") {
		t.Errorf("member with the new password sees %q (err %v), want the private list", got, err)
	}
	if _, err := seen("carol@example.org", old); err == nil {
		t.Error("the replaced password still logs in")
	}
}
