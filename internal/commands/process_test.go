package commands_test

import (
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/commands"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type rig struct {
	t *testing.T
	d *sqlx.DB
	l lists.List
	p *commands.Processor
}

func setup(t *testing.T) *rig {
	t.Helper()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, d: d, l: l, p: &commands.Processor{DB: d, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hostname: "h"}}
}

// receive stores a message for a service address and processes it.
func (r *rig) receive(kind, detail, from, headers, body string) {
	r.t.Helper()
	raw := fmt.Sprintf("From: %s\r\nSubject: x\r\nMessage-ID: <%d@example.org>\r\n%s\r\n%s", from, time.Now().UnixNano(), headers, body)
	r.d.MustExec(`INSERT INTO inbound (list_id, kind, rcpt, detail, mail_from, content_key, raw)
		VALUES ($1, $2, 'x', $3, $4, gen_random_uuid()::text::bytea, $5)`, r.l.ID, kind, detail, from, []byte(raw))
	if _, err := r.p.ProcessAll(r.t.Context()); err != nil {
		r.t.Fatal(err)
	}
}

// mailTo returns the bodies of queued notices to rcpt.
func (r *rig) mailTo(rcpt string) []string {
	var bodies []string
	r.d.SelectContext(r.t.Context(), &bodies, `SELECT convert_from(body, 'UTF8') FROM outbound WHERE kind = 'notice' AND $1 = ANY(rcpts) ORDER BY id`, rcpt)
	return bodies
}

func (r *rig) isMember(addr string) bool {
	var n int
	r.d.GetContext(r.t.Context(), &n, `SELECT count(*) FROM members WHERE list_id = $1 AND address_norm = $2`, r.l.ID, addr)
	return n == 1
}

var tokenRE = regexp.MustCompile(`Subject: confirm ([a-z2-7]{32})`)

func token(t *testing.T, bodies []string) string {
	t.Helper()
	for _, b := range bodies {
		if m := tokenRE.FindStringSubmatch(b); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no confirmation among %d messages", len(bodies))
	return ""
}

// TestSubscribeAndLeave: join → confirmation → reply → member, welcome;
// the same token twice is refused; leave works the same way.
func TestSubscribeAndLeave(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receive("join", "", "bob@example.org", "", "")
	if r.isMember("bob@example.org") {
		t.Fatal("subscribed without confirmation")
	}
	tok := token(t, r.mailTo("bob@example.org"))
	r.receive("confirm", tok, "bob@example.org", "", "")
	if !r.isMember("bob@example.org") {
		t.Fatal("not subscribed after confirming")
	}
	if got := strings.Join(r.mailTo("bob@example.org"), "\n"); !strings.Contains(got, "Welcome to dev@lists.example.org") {
		t.Error("no welcome mail")
	}
	r.receive("request", "", "bob@example.org", "", "confirm "+tok+"\n")
	if last := r.mailTo("bob@example.org"); !strings.Contains(last[len(last)-1], "already used") {
		t.Errorf("reused token: reply %q", last[len(last)-1])
	}
	before := len(r.mailTo("bob@example.org"))
	r.receive("leave", "", "bob@example.org", "", "")
	leave := token(t, r.mailTo("bob@example.org")[before:])
	r.receive("request", "", "bob@example.org", "", "Re: confirm "+leave+"\n")
	if r.isMember("bob@example.org") {
		t.Error("still a member after confirming unsubscribe")
	}
}

// TestForgedSubscribe: asking for someone else's address only mails that
// address a confirmation, and changes nothing.
func TestForgedSubscribe(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receive("request", "", "mallory@example.net", "", "subscribe victim@example.org\n")
	if r.isMember("victim@example.org") {
		t.Fatal("a forged subscribe took effect")
	}
	if n := len(r.mailTo("victim@example.org")); n != 1 {
		t.Errorf("victim got %d messages, want 1 confirmation", n)
	}
	for _, b := range r.mailTo("mallory@example.net") {
		if tokenRE.MatchString(b) {
			t.Error("the requester received the victim's confirmation code")
		}
	}
}

// TestExpiredToken: an old code is refused with a clear answer.
func TestExpiredToken(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receive("join", "", "bob@example.org", "", "")
	tok := token(t, r.mailTo("bob@example.org"))
	r.d.MustExec(`UPDATE tokens SET expires_at = now() - interval '1 minute'`)
	r.receive("confirm", tok, "bob@example.org", "", "")
	if r.isMember("bob@example.org") {
		t.Fatal("an expired token subscribed")
	}
	last := r.mailTo("bob@example.org")
	if !strings.Contains(last[len(last)-1], "expired") {
		t.Errorf("reply %q, want it to say the code expired", last[len(last)-1])
	}
}

// TestRobotsAndLimits: auto-replies get no answer and confirm nothing; an
// autoresponder loop stops at the daily limit.
func TestRobotsAndLimits(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receive("join", "", "bob@example.org", "", "")
	tok := token(t, r.mailTo("bob@example.org"))
	r.receive("confirm", tok, "bob@example.org", "Auto-Submitted: auto-replied\r\n", "I am on vacation")
	if r.isMember("bob@example.org") {
		t.Fatal("a vacation reply confirmed a subscription")
	}
	for range 30 {
		r.receive("request", "", "loop@example.net", "", "help\n")
	}
	if n := len(r.mailTo("loop@example.net")); n != 10 {
		t.Errorf("%d replies to one address in a day, want the limit of 10", n)
	}
}
