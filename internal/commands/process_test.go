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
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-list/parley/internal/commands"
	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/moderation"
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
	r.p.Counts = commands.NewCounts()
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
	for kr, want := range map[[2]string]float64{{"join", "answered"}: 1, {"confirm", "ignored"}: 1, {"request", "answered"}: 30} {
		if got := promtest.ToFloat64(r.p.Counts.WithLabelValues(kr[0], kr[1])); got != want {
			t.Errorf("parley_command_mail_total%v = %v, want %v", kr, got, want)
		}
	}
}

func (r *rig) owner(addr string) {
	r.t.Helper()
	r.d.MustExec(`INSERT INTO members (list_id, address, address_norm, role) VALUES ($1, $2, $2, 'owner')`, r.l.ID, addr)
}

// TestOwnerAuthentication: From: alone never runs an owner command; the
// moderator password runs it at once; an owner without it gets a
// challenge at their registered address, and replying runs the commands.
func TestOwnerAuthentication(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.owner("owner@example.org")
	hash, err := commands.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	r.d.MustExec(`UPDATE lists SET moderator_password = $1`, hash)

	r.receive("request", "", "mallory@example.net", "", "add mallory@example.net\n")
	r.receive("request", "", "owner@example.org", "Approved: wrong password\r\n", "add eve@example.net\n")
	if r.isMember("mallory@example.net") || r.isMember("eve@example.net") {
		t.Fatal("an owner command ran without authentication")
	}
	r.receive("request", "", "anyone@example.net", "Approved: correct horse battery\r\n", "add carol@example.org\n")
	if !r.isMember("carol@example.org") {
		t.Error("the moderator password did not run the command")
	}
	r.receive("request", "", "owner@example.org", "", "Approved: correct horse battery\nadd frank@example.org\n")
	if !r.isMember("frank@example.org") {
		t.Error("an Approved: first body line did not run the command")
	}

	before := len(r.mailTo("owner@example.org"))
	r.receive("request", "", "owner@example.org", "", "add dave@example.org\n")
	if r.isMember("dave@example.org") {
		t.Fatal("an owner command ran on From: alone")
	}
	tok := token(t, r.mailTo("owner@example.org")[before:])
	r.receive("confirm", tok, "owner@example.org", "", "")
	if !r.isMember("dave@example.org") {
		t.Error("confirming the challenge did not run the command")
	}
}

// TestHeldReply: replying to a moderator notice approves the post;
// replying "reject" rejects it.
func TestHeldReply(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.owner("owner@example.org")
	mod := lists.PostModerated
	if _, err := lists.Update(t.Context(), r.d, r.l.Address, lists.Settings{PostPolicy: &mod}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mods := moderation.NewService(moderation.Options{DB: r.d, Logger: log, Hostname: "h"})
	svc := ingest.New(ingest.Options{DB: r.d, Logger: log, Hostname: "h", Moderation: mods})
	defer svc.Close()
	r.p.Moderator = mods
	send := func(id string) string {
		rc, err := svc.Resolve(t.Context(), r.l.Address, 0)
		if err != nil {
			t.Fatal(err)
		}
		before := len(r.mailTo("owner@example.org"))
		err = svc.Accept(t.Context(), ingest.Envelope{From: "bob@example.org", Rcpts: []ingest.Recipient{rc},
			Data: []byte("From: bob@example.org\r\nSubject: held\r\nMessage-ID: <" + id + ">\r\n\r\nhi\r\n")})
		if err != nil {
			t.Fatal(err)
		}
		notices := r.mailTo("owner@example.org")[before:]
		m := regexp.MustCompile(`Reply-To: dev-confirm\+([a-z2-7]{32})@`).FindStringSubmatch(strings.Join(notices, "\n"))
		if m == nil {
			t.Fatalf("moderator notice without a reply address: %v", notices)
		}
		return m[1]
	}
	r.receive("confirm", send("one@x"), "owner@example.org", "", "> quoted notice\n")
	r.receive("confirm", send("two@x"), "owner@example.org", "", "reject off topic\n")
	var states []string
	r.d.SelectContext(t.Context(), &states, `SELECT state FROM moderation ORDER BY id`)
	if fmt.Sprint(states) != "[approved rejected]" {
		t.Errorf("held posts after replies: %v, want [approved rejected]", states)
	}
	var archived int
	r.d.GetContext(t.Context(), &archived, `SELECT count(*) FROM messages WHERE message_id = 'one@x'`)
	if archived != 1 {
		t.Error("the approved post is not archived")
	}
}

// TestMemberSettings: "set" changes nothing until confirmed from the
// member's own address; "password" mails the password to the member only;
// "who" is for owners by default.
func TestMemberSettings(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.d.MustExec(`INSERT INTO members (list_id, address, address_norm) VALUES ($1, 'bob@example.org', 'bob@example.org')`, r.l.ID)
	r.receive("request", "", "bob@example.org", "", "set delivery nomail\n")
	var delivery string
	r.d.GetContext(t.Context(), &delivery, `SELECT delivery FROM members WHERE address_norm = 'bob@example.org'`)
	if delivery != "regular" {
		t.Fatal("a setting changed without confirmation")
	}
	r.receive("confirm", token(t, r.mailTo("bob@example.org")), "bob@example.org", "", "")
	r.d.GetContext(t.Context(), &delivery, `SELECT delivery FROM members WHERE address_norm = 'bob@example.org'`)
	if delivery != "nomail" {
		t.Errorf("delivery = %s after confirming, want nomail", delivery)
	}
	r.receive("request", "", "bob@example.org", "", "password\n")
	var hash string
	r.d.GetContext(t.Context(), &hash, `SELECT archive_password FROM members WHERE address_norm = 'bob@example.org'`)
	if hash != "" {
		t.Fatal("a password was issued on the strength of From: alone")
	}
	before := len(r.mailTo("bob@example.org"))
	r.receive("confirm", token(t, r.mailTo("bob@example.org")[before-2:]), "bob@example.org", "", "")
	r.d.GetContext(t.Context(), &hash, `SELECT archive_password FROM members WHERE address_norm = 'bob@example.org'`)
	if !strings.HasPrefix(hash, "$2") || !strings.Contains(strings.Join(r.mailTo("bob@example.org"), ""), "password: ") {
		t.Errorf("password: hash %q, mails %d", hash, len(r.mailTo("bob@example.org")))
	}
	r.receive("request", "", "bob@example.org", "", "who\n")
	last := r.mailTo("bob@example.org")
	if !strings.Contains(last[len(last)-1], "not shown to you") {
		t.Errorf("who for a member of an owners-only roster: %q", last[len(last)-1])
	}
}

// TestTemplateOverride: a list's own help text is used; a broken template
// is refused when it is set.
func TestTemplateOverride(t *testing.T) {
	t.Parallel()
	r := setup(t)
	if err := commands.SetTemplate(t.Context(), r.d, r.l, "help", "Ask {{.Owner}} anything."); err != nil {
		t.Fatal(err)
	}
	if err := commands.SetTemplate(t.Context(), r.d, r.l, "help", "{{.Nope"); err == nil {
		t.Error("a broken template was accepted")
	}
	if err := commands.SetTemplate(t.Context(), r.d, r.l, "nosuch", "x"); err == nil {
		t.Error("an unknown template name was accepted")
	}
	r.receive("request", "", "bob@example.org", "", "help\n")
	if got := strings.Join(r.mailTo("bob@example.org"), ""); !strings.Contains(got, "Ask dev-owner@lists.example.org anything.") {
		t.Errorf("reply does not use the list's help text:\n%s", got)
	}
}

// TestSubscriptionApproval: on a list whose subscriptions need an owner,
// a confirmed subscription waits until an owner replies.
func TestSubscriptionApproval(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.owner("owner@example.org")
	approve := "approve"
	l, err := lists.Update(t.Context(), r.d, r.l.Address, lists.Settings{SubscribeBy: &approve})
	if err != nil {
		t.Fatal(err)
	}
	r.l = l
	r.receive("join", "", "bob@example.org", "", "")
	r.receive("confirm", token(t, r.mailTo("bob@example.org")), "bob@example.org", "", "")
	if r.isMember("bob@example.org") {
		t.Fatal("subscribed without an owner's approval")
	}
	notices := r.mailTo("owner@example.org")
	m := regexp.MustCompile(`Reply-To: dev-confirm\+([a-z2-7]{32})@`).FindStringSubmatch(strings.Join(notices, "\n"))
	if m == nil {
		t.Fatalf("no approval request to the owner: %v", notices)
	}
	r.receive("confirm", m[1], "owner@example.org", "", "")
	if !r.isMember("bob@example.org") {
		t.Error("the owner's reply did not subscribe bob")
	}
}

// TestPoisonMessage: a message whose handling keeps failing is set aside
// after a few attempts and does not block the mail behind it.
func TestPoisonMessage(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.d.MustExec(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF 'poison@example.org' = ANY (NEW.rcpts) THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`)
	r.d.MustExec(`CREATE TRIGGER poison BEFORE INSERT ON outbound FOR EACH ROW EXECUTE FUNCTION poison()`)
	r.receive("request", "", "poison@example.org", "", "help\n")
	for range 5 {
		if _, err := r.p.ProcessAll(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	r.receive("request", "", "fine@example.org", "", "help\n")
	var state string
	var attempts int
	r.d.QueryRowx(`SELECT state, attempts FROM inbound WHERE mail_from = 'poison@example.org'`).Scan(&state, &attempts)
	if state != "failed" || attempts != 5 {
		t.Errorf("poison message: state %s after %d attempts, want failed after 5", state, attempts)
	}
	if len(r.mailTo("fine@example.org")) != 1 {
		t.Error("the message behind the poison one was not answered")
	}
}

// TestNoMailCannon: one message makes at most one mail to any address,
// however many requests it holds, and many messages no more than the
// daily limit.
func TestNoMailCannon(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receive("request", "", "mallory@example.net", "", strings.Repeat("subscribe victim@example.org\n", 40))
	if n := len(r.mailTo("victim@example.org")); n != 1 {
		t.Errorf("victim got %d confirmations from one message, want 1", n)
	}
	for i := range 15 {
		r.receive("request", "", "mallory@example.net", "", fmt.Sprintf("subscribe victim@example.org\nhelp %d\n", i))
	}
	if n := len(r.mailTo("victim@example.org")); n != 10 {
		t.Errorf("victim got %d confirmations from 16 messages, want the daily limit of 10", n)
	}
}
