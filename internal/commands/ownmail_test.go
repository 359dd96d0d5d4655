package commands_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
)

// outboundTo counts every queued message to addr (notices and posts).
func (r *rig) outboundTo(addr string) int {
	var n int
	r.d.GetContext(r.t.Context(), &n, `SELECT count(*) FROM outbound WHERE $1 = ANY(rcpts)`, addr)
	return n
}

// TestOwnAddressesNeverMailed: a command mail naming the list itself, one
// of its service addresses, another list or a postmaster of a served
// domain mails none of them, subscribes none of them, and says why.
func TestOwnAddressesNeverMailed(t *testing.T) {
	t.Parallel()
	r := setup(t)
	other, _ := mailaddr.ParseList("other@lists.example.org")
	if _, err := lists.Create(t.Context(), r.d, other, lists.Settings{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	own := []string{"dev@lists.example.org", "dev-request@lists.example.org", "dev-bounces+x=y@lists.example.org",
		"other@lists.example.org", "other-owner@lists.example.org", "postmaster@lists.example.org", "MAILER-DAEMON@lists.example.org"}
	var body strings.Builder
	for _, a := range own {
		body.WriteString("subscribe " + a + "\n")
	}
	r.receive("request", "", "bob@example.org", "", body.String())
	for _, a := range own {
		if n := r.outboundTo(a); n != 0 {
			t.Errorf("%d messages to %s, one of this server's own addresses", n, a)
		}
	}
	reply := strings.Join(r.mailTo("bob@example.org"), "\n")
	if !strings.Contains(reply, "dev@lists.example.org is an address of this server") {
		t.Errorf("the reply does not say why:\n%s", reply)
	}
	// Mail that claims to come from one of our addresses gets no answer.
	r.receive("request", "", "other-request@lists.example.org", "", "help\n")
	if n := r.outboundTo("other-request@lists.example.org"); n != 0 {
		t.Errorf("%d answers to mail from one of our own addresses", n)
	}
	// Owners cannot add one either.
	r.owner("owner@example.org")
	r.receive("request", "", "owner@example.org", "", "add other@lists.example.org\n")
	tok := token(t, r.mailTo("owner@example.org"))
	r.receive("confirm", tok, "owner@example.org", "", "")
	if r.isMember("other@lists.example.org") {
		t.Error("another list was subscribed by an owner command")
	}
}

// TestOneMailPerAddress: one message makes at most one mail to any
// address. A join gets the confirmation only (not also "a confirmation
// was sent"); confirming gets the welcome only (not also "is now
// subscribed"); a forged request mails its victim once; other answers go
// into the confirmation that goes to the sender anyway.
func TestOneMailPerAddress(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receive("join", "", "bob@example.org", "", "")
	if n := r.outboundTo("bob@example.org"); n != 1 {
		t.Errorf("join: %d mails to bob, want 1 (the confirmation)", n)
	}
	tok := token(t, r.mailTo("bob@example.org"))
	r.receive("confirm", tok, "bob@example.org", "", "")
	if n := r.outboundTo("bob@example.org"); n != 2 {
		t.Errorf("confirm: %d mails to bob in all, want 2 (confirmation, welcome)", n)
	}
	r.receive("request", "", "victim@example.org", "", "subscribe\nsubscribe digest\nsubscribe victim@example.org\n")
	if n := r.outboundTo("victim@example.org"); n != 1 {
		t.Errorf("forged request: %d mails to the victim, want 1", n)
	}
	r.receive("request", "", "carol@example.org", "", "subscribe\nlists\n")
	mails := r.mailTo("carol@example.org")
	if len(mails) != 1 || !strings.Contains(mails[0], "Subject: confirm ") || !strings.Contains(mails[0], "Public lists here") {
		t.Errorf("subscribe + lists: %d mails, want one confirmation carrying the other answer:\n%s", len(mails), strings.Join(mails, "\n---\n"))
	}
}

// TestCommandsInNestedParts: commands in the text/plain part of
// multipart/mixed → multipart/alternative, as mail clients send them, are
// read.
func TestCommandsInNestedParts(t *testing.T) {
	t.Parallel()
	r := setup(t)
	body := "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
		"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nlists\r\n" +
		"--inner\r\nContent-Type: text/html\r\n\r\n<p>lists</p>\r\n--inner--\r\n" +
		"--outer\r\nContent-Type: application/pdf\r\n\r\nxx\r\n--outer--\r\n"
	r.receive("request", "", "dan@example.org", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n", body)
	if got := strings.Join(r.mailTo("dan@example.org"), "\n"); !strings.Contains(got, "Public lists here") {
		t.Errorf("the command in the nested text part was not read:\n%s", got)
	}
}

// TestAddressCase: a join from the member's address in other case is
// "already subscribed", not a second subscription.
func TestAddressCase(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.receive("join", "", "grace@school8.example", "", "")
	r.receive("confirm", token(t, r.mailTo("grace@school8.example")), "grace@school8.example", "", "")
	r.receive("request", "", "GRACE@School8.Example", "", "subscribe\n")
	var n int
	r.d.GetContext(t.Context(), &n, `SELECT count(*) FROM members WHERE list_id = $1`, r.l.ID)
	if n != 1 {
		t.Errorf("%d members, want 1", n)
	}
	if got := strings.Join(r.mailTo("GRACE@School8.Example"), "\n"); !strings.Contains(got, "already subscribed") {
		t.Errorf("the second join was not answered 'already subscribed':\n%s", got)
	}
}

// TestOwnersToldOfJoinsAndLeaves: a member who joins or leaves on their
// own makes the owners hear of it, unless the list says not to.
func TestOwnersToldOfJoinsAndLeaves(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.owner("owner@example.org")
	before := len(r.mailTo("owner@example.org"))
	r.receive("join", "", "bob@example.org", "", "")
	r.receive("confirm", token(t, r.mailTo("bob@example.org")), "bob@example.org", "", "")
	n := len(r.mailTo("bob@example.org"))
	r.receive("leave", "", "bob@example.org", "", "")
	r.receive("confirm", token(t, r.mailTo("bob@example.org")[n:]), "bob@example.org", "", "")
	got := strings.Join(r.mailTo("owner@example.org")[before:], "\n")
	if !strings.Contains(got, "bob@example.org joined dev@lists.example.org") || !strings.Contains(got, "bob@example.org left dev@lists.example.org") {
		t.Errorf("the owners were not told:\n%s", got)
	}
	off := false
	if _, err := lists.Update(t.Context(), r.d, r.l.Address, lists.Settings{NotifyMembership: &off}); err != nil {
		t.Fatal(err)
	}
	before = len(r.mailTo("owner@example.org"))
	r.receive("join", "", "carol@example.org", "", "")
	r.receive("confirm", token(t, r.mailTo("carol@example.org")), "carol@example.org", "", "")
	if n := len(r.mailTo("owner@example.org")) - before; n != 0 {
		t.Errorf("%d notices with notify-owners off", n)
	}
}
