package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/parley-list/parley/internal/testutil/dnstest"
	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// person is a test's view of the server from a person's side: what they
// send, and every mail that comes back, counted once everything their
// mail caused has been handled.
type person struct {
	t    *testing.T
	smtp string
	sink *smtpsink.Sink
	db   *sqlx.DB
	seen int // sink messages already returned by settle
}

// serveForPeople starts the real server on a fresh database, its relay a
// sink on loopback, with the environment extra, and returns it with the
// person who talks to it.
func serveForPeople(t *testing.T, extra ...string) ([]string, *server, *person) {
	sink := smtpsink.Start(t)
	dsn := pgtest.NewDSN(t)
	env := baseEnv(dataDir(t), append([]string{"PARLEY_DATABASE_URL=" + dsn, "PARLEY_RELAY=smtp://" + sink.Addr}, extra...)...)
	s := startServer(t, env)
	return env, s, newPerson(t, s, sink, dsn)
}

func newPerson(t *testing.T, s *server, sink *smtpsink.Sink, dsn string) *person {
	d, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &person{t: t, smtp: s.ready["smtp"], sink: sink, db: d}
}

// send hands one message to the server over SMTP: raw is the whole
// message (CRLF line ends are added where LF is alone).
func (p *person) send(from, to, raw string) {
	p.t.Helper()
	if err := p.trySend(from, to, raw); err != nil {
		p.t.Fatalf("sending to %s: %v", to, err)
	}
}

// trySend is send that returns the server's refusal.
func (p *person) trySend(from, to, raw string) error {
	raw = strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n", "\n"), "\n", "\r\n")
	c, err := smtp.Dial(p.smtp)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

// mail sends a message with the given subject and text body.
func (p *person) mail(from, to, subject, body string) {
	p.t.Helper()
	p.send(from, to, "From: "+from+"\nTo: "+to+"\nSubject: "+subject+"\nMessage-ID: <"+
		strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")+"."+from+">\nDate: "+
		time.Now().Format(time.RFC1123Z)+"\nContent-Type: text/plain; charset=utf-8\n\n"+body)
}

// settle waits until the server has handled all the mail it was given
// and sent everything that caused, and returns the mails sent since the
// last settle.
func (p *person) settle() []smtpsink.Message {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.t.Context(), time.Minute)
	defer cancel()
	for {
		var busy int
		err := p.db.GetContext(ctx, &busy, `SELECT (SELECT count(*) FROM inbound WHERE state = 'new')
			+ (SELECT count(*) FROM outbound WHERE state IN ('pending', 'sending'))
			+ (SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending'))`)
		if err != nil {
			p.t.Fatalf("waiting for the server: %v", err)
		}
		if busy == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	all := p.sink.Messages()
	got := all[p.seen:]
	p.seen = len(all)
	return got
}

// only returns the single mail in ms, failing when there is not exactly
// one, or when it is not to rcpt.
func only(t *testing.T, ms []smtpsink.Message, rcpt string) string {
	t.Helper()
	if len(ms) != 1 {
		var subjects []string
		for _, m := range ms {
			subjects = append(subjects, m.To[0]+": "+header(string(m.Data), "Subject"))
		}
		t.Fatalf("got %d mails, want 1: %q", len(ms), subjects)
	}
	if ms[0].To[0] != rcpt {
		t.Fatalf("the mail went to %s, want %s", ms[0].To[0], rcpt)
	}
	return string(ms[0].Data)
}

// sentTo returns the mails in ms to rcpt.
func sentTo(ms []smtpsink.Message, rcpt string) []smtpsink.Message {
	var out []smtpsink.Message
	for _, m := range ms {
		if m.To[0] == rcpt {
			out = append(out, m)
		}
	}
	return out
}

// header returns the first value of a header field in a raw message,
// unfolded.
func header(raw, name string) string {
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	head = strings.NewReplacer("\r\n ", " ", "\r\n\t", " ").Replace(head)
	m := regexp.MustCompile(`(?mi)^` + name + `: (.*)\r?$`).FindStringSubmatch(head)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

var replyAddr = regexp.MustCompile(`Reply-To: (dev-confirm\+[a-z2-7]+@lists\.example\.org)`)

// TestCommandMailReplies: what a person gets back for the mail they
// write to a list's addresses: one mail per action, the help text once and
// only when nothing ran, a subject without "Re: Re:", wording and
// durations a person understands, where the archive is, nothing raw
// echoed back.
func TestCommandMailReplies(t *testing.T) {
	t.Parallel()
	env, s, p := serveForPeople(t)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--archive", "private", "--subscribe", "confirm")
	const req = "dev-request@lists.example.org"

	t.Run("a letter instead of commands", func(t *testing.T) {
		p.t = t
		p.mail("ivan@example.org", req, "Joining", "Hi,\n\nplease add me to the list. I run the library\nat the Northside school.\n\nThanks,\nIvan\n")
		got := only(t, p.settle(), "ivan@example.org")
		if n := strings.Count(got, "Commands for dev@lists.example.org"); n != 1 {
			t.Errorf("the help text came %d times, want once:\n%s", n, got)
		}
		for _, bad := range []string{"Unknown command", `"hi,"`, `"thanks,"`, `"ivan"`} {
			if strings.Contains(got, bad) {
				t.Errorf("the reply says %s:\n%s", bad, got)
			}
		}
		if s := header(got, "Subject"); s != "Re: Joining" {
			t.Errorf("Subject: %q, want %q", s, "Re: Joining")
		}
	})

	t.Run("joining is one mail, confirming another", func(t *testing.T) {
		p.t = t
		p.mail("ann@example.org", "dev-join@lists.example.org", "join", "Hello, I would like to join.\n")
		conf := only(t, p.settle(), "ann@example.org")
		if !strings.Contains(conf, "expires in 3 days") {
			t.Errorf("the confirmation does not say when it expires in words:\n%s", conf)
		}
		to := replyAddr.FindStringSubmatch(conf)
		if to == nil {
			t.Fatalf("confirmation without a reply address:\n%s", conf)
		}
		p.mail("ann@example.org", to[1], "Re: "+header(conf, "Subject"), "> Someone (perhaps you) asked\n")
		welcome := only(t, p.settle(), "ann@example.org")
		for _, want := range []string{"Welcome to dev@lists.example.org", "server:   localhost", "mailbox:  dev@lists.example.org",
			"user:     your address", `mail dev-request@lists.example.org the word "password"`} {
			if !strings.Contains(welcome, want) {
				t.Errorf("the welcome does not say %q:\n%s", want, welcome)
			}
		}
	})

	t.Run("a command in both Subject and body runs once", func(t *testing.T) {
		p.t = t
		p.mail("bea@example.org", req, "subscribe", "subscribe me please\n")
		conf := only(t, p.settle(), "bea@example.org")
		if strings.Contains(conf, "already") || strings.Contains(conf, "one request at a time") {
			t.Errorf("the confirmation complains of the repeat:\n%s", conf)
		}
	})

	t.Run("Re: is not doubled", func(t *testing.T) {
		p.t = t
		p.mail("ivan@example.org", req, "Re: info", "info\n")
		got := only(t, p.settle(), "ivan@example.org")
		if s := header(got, "Subject"); s != "Re: info" {
			t.Errorf("Subject: %q, want %q", s, "Re: info")
		}
		if !strings.Contains(got, "Read the archive in any mail client") {
			t.Errorf("info does not say how to read the archive:\n%s", got)
		}
	})

	t.Run("the password confirmation talks about a password", func(t *testing.T) {
		p.t = t
		p.mail("ann@example.org", req, "password", "")
		conf := only(t, p.settle(), "ann@example.org")
		if !strings.Contains(conf, "new password for reading the archive") || strings.Contains(conf, "change your subscription") {
			t.Errorf("password confirmation:\n%s", conf)
		}
		p.mail("ann@example.org", replyAddr.FindStringSubmatch(conf)[1], "Re: confirm", "")
		pw := only(t, p.settle(), "ann@example.org")
		for _, want := range []string{"user:     ann@example.org", "password: ", "server:   localhost"} {
			if !strings.Contains(pw, want) {
				t.Errorf("the password mail does not say %q:\n%s", want, pw)
			}
		}
	})

	t.Run("control bytes and invalid UTF-8 are not echoed", func(t *testing.T) {
		p.t = t
		p.send("ivan@example.org", req, "From: ivan@example.org\nSubject: who\nContent-Type: text/plain; charset=utf-8\n\n"+
			"who \x1b]0;owned\x07 \xff\xfe\n")
		got := only(t, p.settle(), "ivan@example.org")
		if strings.ContainsAny(got, "\x1b\x07") || strings.Contains(got, "\xff") {
			t.Errorf("the reply echoes raw bytes: %q", got)
		}
	})

	t.Run("an HTML-only command mail is read", func(t *testing.T) {
		p.t = t
		p.send("ivan@example.org", req, "From: ivan@example.org\nSubject: commands\nMIME-Version: 1.0\n"+
			"Content-Type: text/html; charset=utf-8\n\n<html><body><p>info</p><div>-- <br>Ivan</div></body></html>\n")
		got := only(t, p.settle(), "ivan@example.org")
		if !strings.Contains(got, "Members may post. The archive is for members only.") {
			t.Errorf("the HTML mail's info was not answered:\n%s", got)
		}
	})
	s.stop()
}

// TestModeratorReplies: a wrong moderator password is said to be wrong,
// and a rejection's reason reaches the author whole.
func TestModeratorReplies(t *testing.T) {
	t.Parallel()
	env, s, p := serveForPeople(t)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "moderated", "--owner", "owner@example.org")
	if r := run(t, env, "sekrit-password\n", "list", "set", "dev@lists.example.org", "--moderator-password", "-"); r.code != 0 {
		t.Fatalf("set password: %s", r.stderr)
	}
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "carol@example.org")
	p.settle()

	p.send("owner@example.org", "dev-request@lists.example.org", "From: owner@example.org\nSubject: owner commands\nApproved: not-the-password\n\nadd dan@example.org\n")
	got := only(t, p.settle(), "owner@example.org")
	if !strings.Contains(got, "The moderator password in your message is wrong; nothing was done.") {
		t.Errorf("a wrong password is not said to be wrong:\n%s", got)
	}

	p.mail("carol@example.org", "dev@lists.example.org", "A question", "Is this on topic?\n")
	ms := p.settle()
	held := only(t, sentTo(ms, "owner@example.org"), "owner@example.org")
	if len(ms) != 2 {
		t.Errorf("%d mails for a held post, want 2: the moderators' notice and the member's", len(ms))
	}
	reason := "Off topic for this list: please see the charter at https://example.org/charter and ask on the general list"
	p.mail("owner@example.org", replyAddr.FindStringSubmatch(held)[1], "Re: held", "reject "+reason+"\n\n> A post to dev@lists.example.org is waiting\n")
	ms = p.settle()
	if len(ms) != 2 {
		t.Fatalf("%d mails after the rejection, want 2 (the author's notice, the moderator's answer)", len(ms))
	}
	notice := only(t, sentTo(ms, "carol@example.org"), "carol@example.org")
	if got := only(t, sentTo(ms, "owner@example.org"), "owner@example.org"); !strings.Contains(got, "rejected") {
		t.Errorf("the moderator's answer:\n%s", got)
	}
	if !strings.Contains(strings.Join(strings.Fields(notice), " "), reason) {
		t.Errorf("the author's notice does not carry the whole reason %q:\n%s", reason, notice)
	}
	s.stop()
}

// TestHeldAuthorNotice: a held post's author hears once that it awaits
// approval when they are a member or their From: is authenticated (an
// aligned DKIM signature here); a stranger's unauthenticated post tells
// only the moderators, so a forged From: brings its victim nothing.
func TestHeldAuthorNotice(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dns.TXT("s1._domainkey.signed.example", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	env, s, p := serveForPeople(t, "PARLEY_DNS_RESOLVER="+dns.Addr)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "moderated", "--owner", "owner@example.org")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "carol@example.org")
	p.settle()

	p.mail("carol@example.org", "dev@lists.example.org", "member's post", "Hello.\n")
	ms := p.settle()
	notice := only(t, sentTo(ms, "carol@example.org"), "carol@example.org")
	if !strings.Contains(notice, "is waiting for a moderator's approval") {
		t.Errorf("the member's notice:\n%s", notice)
	}
	if len(sentTo(ms, "owner@example.org")) != 1 || len(ms) != 2 {
		t.Errorf("%d mails, want the member's notice and the moderators'", len(ms))
	}

	p.mail("victim@forged.example", "dev@lists.example.org", "forged post", "Buy now.\n")
	only(t, p.settle(), "owner@example.org")

	var signedMsg bytes.Buffer
	msg := "From: ann@signed.example\r\nTo: dev@lists.example.org\r\nSubject: signed post\r\nMessage-ID: <signed@signed.example>\r\n\r\nHello.\r\n"
	if err := dkim.Sign(&signedMsg, strings.NewReader(msg), &dkim.SignOptions{Domain: "signed.example", Selector: "s1", Signer: priv}); err != nil {
		t.Fatal(err)
	}
	p.send("ann@signed.example", "dev@lists.example.org", signedMsg.String())
	ms = p.settle()
	if n := len(sentTo(ms, "ann@signed.example")); n != 1 || len(ms) != 2 {
		t.Errorf("signed stranger: %d notices to the author, %d mails in all; want 1 and 2", n, len(ms))
	}
	s.stop()
}

// TestSubscriptionApproval: on a list whose owners approve subscriptions,
// a confirmed request waits in a queue (parley sub ls); an owner approves
// or refuses it by replying to the notice or with the CLI; the person
// hears once either way; a second owner answering the same notice is told
// who decided and when. Members added or removed by the CLI are welcomed
// and told goodbye.
func TestSubscriptionApproval(t *testing.T) {
	t.Parallel()
	env, s, p := serveForPeople(t)
	const list = "dev@lists.example.org"
	mustRun(t, env, "list", "create", list, "--subscribe", "approve", "--owner", "ann@example.org")
	mustRun(t, env, "member", "add", "--quiet", list, "bob@example.org", "--role", "owner")
	join := func(who string) string { // returns the owners' notice
		t.Helper()
		p.mail(who, "dev-join@lists.example.org", "join", "")
		conf := only(t, p.settle(), who)
		p.mail(who, replyAddr.FindStringSubmatch(conf)[1], "Re: confirm", "")
		ms := p.settle()
		if got := only(t, sentTo(ms, who), who); !strings.Contains(got, "now waits for the approval of the list's owners") {
			t.Errorf("%s was told:\n%s", who, got)
		}
		if len(ms) != 3 || len(sentTo(ms, "ann@example.org")) != 1 || len(sentTo(ms, "bob@example.org")) != 1 {
			t.Fatalf("%d mails after confirming, want 3: the requester's and one to each owner", len(ms))
		}
		return string(sentTo(ms, "ann@example.org")[0].Data)
	}

	notice := join("dan@example.org")
	if ls := mustRun(t, env, "sub", "ls"); !strings.Contains(ls, "dan@example.org") || !strings.Contains(ls, list) {
		t.Errorf("sub ls:\n%s", ls)
	}
	to := replyAddr.FindStringSubmatch(notice)[1]
	p.mail("ann@example.org", to, "Re: request", "refuse Not a member of the librarians' network.\n")
	ms := p.settle()
	refusal := only(t, sentTo(ms, "dan@example.org"), "dan@example.org")
	if !strings.Contains(refusal, "Reason: Not a member of the librarians' network.") {
		t.Errorf("the refusal does not carry the reason:\n%s", refusal)
	}
	if got := only(t, sentTo(ms, "ann@example.org"), "ann@example.org"); !strings.Contains(got, "was refused and told so") {
		t.Errorf("the deciding owner was told:\n%s", got)
	}
	p.mail("bob@example.org", to, "Re: request", "")
	late := only(t, p.settle(), "bob@example.org")
	if !strings.Contains(late, "was already refused by ann@example.org by mail on ") {
		t.Errorf("the second owner was not told who decided:\n%s", late)
	}
	if strings.Contains(mustRun(t, env, "member", "ls", list), "dan@") {
		t.Error("a refused request became a member")
	}

	join("eve@example.org")
	if out := mustRun(t, env, "sub", "approve", list, "eve@example.org"); !strings.Contains(out, "approved eve@example.org") {
		t.Errorf("sub approve: %s", out)
	}
	if got := only(t, p.settle(), "eve@example.org"); !strings.Contains(got, "Welcome to "+list) {
		t.Errorf("eve was not welcomed:\n%s", got)
	}
	if ls := mustRun(t, env, "sub", "ls", list); strings.Contains(ls, "@") {
		t.Errorf("sub ls after the decisions:\n%s", ls)
	}

	mustRun(t, env, "member", "add", list, "frank@example.org")
	if got := only(t, p.settle(), "frank@example.org"); !strings.Contains(got, "Welcome to "+list) {
		t.Errorf("a member added by the CLI was not welcomed:\n%s", got)
	}
	mustRun(t, env, "member", "rm", list, "frank@example.org")
	if got := only(t, sentTo(p.settle(), "frank@example.org"), "frank@example.org"); !strings.Contains(got, "You are no longer subscribed") {
		t.Errorf("a member removed by the CLI was not told:\n%s", got)
	}
	s.stop()
}
