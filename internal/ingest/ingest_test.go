package ingest_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/moderation"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	t   *testing.T
	db  *sqlx.DB
	svc *ingest.Service
	mod *moderation.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	d := pgtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mod := moderation.NewService(moderation.Options{DB: d, Logger: log, Hostname: "parley.test"})
	svc := ingest.New(ingest.Options{DB: d, Logger: log, Hostname: "parley.test", MaxMessageBytes: 1 << 20, Moderation: mod})
	return &fixture{t: t, db: d, svc: svc, mod: mod}
}

func (f *fixture) list(addr string, policy lists.PostPolicy, nonmember lists.Action, ms ...string) {
	f.t.Helper()
	a, _ := mailaddr.ParseList(addr)
	l, err := lists.Create(f.t.Context(), f.db, a, lists.Settings{PostPolicy: &policy, NonMember: &nonmember}, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	var news []members.New
	for _, m := range ms {
		role := members.RoleMember
		if r, addr, ok := strings.Cut(m, ":"); ok {
			role, m = members.Role(r), addr
		}
		n, _ := members.ParseNew(m, role, "")
		news = append(news, n)
	}
	if _, err := members.Add(f.t.Context(), f.db, l.ID, news); err != nil {
		f.t.Fatal(err)
	}
}

// send resolves the recipients and accepts the message, as the SMTP side
// does; a resolve error is returned as is.
func (f *fixture) send(from string, to []string, msg string) error {
	f.t.Helper()
	var rs []ingest.Recipient
	for _, r := range to {
		rc, err := f.svc.Resolve(f.t.Context(), r, 0)
		if err != nil {
			return err
		}
		rs = append(rs, rc)
	}
	return f.svc.Accept(f.t.Context(), ingest.Envelope{From: from, Rcpts: rs, Data: []byte(msg), Source: "smtp"})
}

func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.db.GetContext(f.t.Context(), &n, q, args...); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func post(from, id, subject string, extra ...string) string {
	return fmt.Sprintf("From: %s\nTo: dev@lists.example.org\nSubject: %s\nMessage-ID: <%s>\n%s\nbody\n", from, subject, id, strings.Join(extra, ""))
}

func code(err error) int {
	var r *ingest.Rejection
	if errors.As(err, &r) {
		return r.Code
	}
	if err != nil {
		return 451
	}
	return 250
}

func TestResolve(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.list("dev@lists.example.org", lists.PostOpen, lists.ActionHold)
	tests := []struct {
		rcpt string
		code int
		kind mailaddr.Kind
	}{
		{"dev@lists.example.org", 250, mailaddr.KindPost},
		{"DEV@Lists.Example.ORG", 250, mailaddr.KindPost},
		{"dev-request@lists.example.org", 250, mailaddr.KindRequest},
		{"dev-confirm+abc123@lists.example.org", 250, mailaddr.KindConfirm},
		{"dev-bounces+bob=example.org@lists.example.org", 250, mailaddr.KindBounce},
		{"dev-owner@lists.example.org", 250, mailaddr.KindOwner},
		{"nope@lists.example.org", 550, ""},
		{"dev+tag@lists.example.org", 550, ""},
		{"dev@elsewhere.example", 550, ""},
		{"not an address", 501, ""},
	}
	for _, tc := range tests {
		r, err := f.svc.Resolve(t.Context(), tc.rcpt, 0)
		if got := code(err); got != tc.code || (err == nil && r.Route.Kind != tc.kind) {
			t.Errorf("Resolve(%q) = %+v, %v (%d); want %d %s", tc.rcpt, r.Route, err, got, tc.code, tc.kind)
		}
	}
	var rej *ingest.Rejection
	_, err := f.svc.Resolve(t.Context(), "dev@elsewhere.example", 0)
	if !errors.As(err, &rej) || rej.Enhanced != [3]int{5, 7, 1} {
		t.Errorf("foreign domain: %v, want 550 5.7.1 (no relaying)", err)
	}
	_, err = f.svc.Resolve(t.Context(), "dev@lists.example.org", 2<<20)
	if code(err) != 552 {
		t.Errorf("declared SIZE over the limit: %v, want 552", err)
	}
}

// TestPolicies sends one post per case and checks where it ended up.
func TestPolicies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.list("dev@lists.example.org", lists.PostMembers, lists.ActionHold, "owner:owner@example.org", "bob@example.org")
	f.list("strict@lists.example.org", lists.PostMembers, lists.ActionReject, "bob@example.org")
	f.list("quiet@lists.example.org", lists.PostMembers, lists.ActionDiscard)
	f.list("mod@lists.example.org", lists.PostModerated, lists.ActionHold, "bob@example.org")
	f.list("news@lists.example.org", lists.PostAnnounce, lists.ActionHold, "owner:owner@example.org", "bob@example.org")
	tests := []struct {
		name, list, from, envFrom string
		extra                     []string
		wantCode                  int
		wantState                 string // archived, held, discarded, "" (nothing)
	}{
		{"member posts", "dev", "bob@example.org", "bob@example.org", nil, 250, "archived"},
		{"member in other case posts", "dev", "BOB@Example.org", "Bob@example.ORG", nil, 250, "archived"},
		{"non-member held", "dev", "eve@example.net", "eve@example.net", nil, 250, "held"},
		{"non-member rejected", "strict", "eve@example.net", "eve@example.net", nil, 550, ""},
		{"non-member discarded", "quiet", "eve@example.net", "eve@example.net", nil, 250, "discarded"},
		{"moderated list holds members", "mod", "bob@example.org", "bob@example.org", nil, 250, "held"},
		{"announce refuses members", "news", "bob@example.org", "bob@example.org", nil, 550, ""},
		{"announce takes owners", "news", "owner@example.org", "owner@example.org", nil, 250, "archived"},
		{"own List-Id is a loop", "dev", "bob@example.org", "bob@example.org", []string{"List-Id: Dev <dev.lists.example.org>\n"}, 250, "discarded"},
		{"own X-Loop is a loop", "dev", "bob@example.org", "bob@example.org", []string{"X-Loop: dev@lists.example.org\n"}, 250, "discarded"},
		{"auto-reply", "dev", "bob@example.org", "bob@example.org", []string{"Auto-Submitted: auto-replied\n"}, 250, "discarded"},
		{"null sender", "dev", "bob@example.org", "", nil, 250, "discarded"},
		{"mailer-daemon", "dev", "MAILER-DAEMON@example.org", "MAILER-DAEMON@example.org", nil, 250, "discarded"},
	}
	for i, tc := range tests {
		id := fmt.Sprintf("case%d@example.org", i)
		err := f.send(tc.envFrom, []string{tc.list + "@lists.example.org"}, post(tc.from, id, tc.name, tc.extra...))
		if got := code(err); got != tc.wantCode {
			t.Errorf("%s: reply %d (%v), want %d", tc.name, got, err, tc.wantCode)
			continue
		}
		archived := f.count(`SELECT count(*) FROM messages WHERE message_id = $1`, id)
		var state string
		f.db.GetContext(t.Context(), &state, `SELECT state FROM moderation WHERE message_id = $1`, id)
		if archived == 1 {
			state = "archived"
		}
		if state != tc.wantState {
			t.Errorf("%s: ended up %q, want %q", tc.name, state, tc.wantState)
		}
	}
	// Held posts notify the list's owner; accepted ones queue one post job.
	if n := f.count(`SELECT count(*) FROM outbound WHERE kind = 'notice' AND 'owner@example.org' = ANY(rcpts)`); n != 1 {
		t.Errorf("%d moderator notices to the dev owner, want 1 (for the non-member post)", n)
	}
	if n := f.count(`SELECT count(*) FROM outbound WHERE kind = 'post'`); n != 3 {
		t.Errorf("%d post jobs, want 3", n)
	}
}

// TestIdempotent: a retry after a lost reply archives nothing new, for an
// accepted post and a held one alike.
func TestIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.list("dev@lists.example.org", lists.PostMembers, lists.ActionHold, "owner:owner@example.org", "bob@example.org")
	for range 3 {
		if err := f.send("bob@example.org", []string{"dev@lists.example.org"}, post("bob@example.org", "once@x", "hi")); err != nil {
			t.Fatal(err)
		}
		if err := f.send("eve@example.net", []string{"dev@lists.example.org"}, post("eve@example.net", "held-once@x", "hi")); err != nil {
			t.Fatal(err)
		}
		noID := "From: bob@example.org\nSubject: no id\n\nsame body\n"
		if err := f.send("bob@example.org", []string{"dev@lists.example.org"}, noID); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 2 {
		t.Errorf("%d archived, want 2 (one with and one without Message-ID)", n)
	}
	if n := f.count(`SELECT count(*) FROM moderation`); n != 1 {
		t.Errorf("%d held, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM outbound`); n != 3 {
		t.Errorf("%d outbound jobs, want 3 (two posts, one notice)", n)
	}
	var raw string
	f.db.GetContext(t.Context(), &raw, `SELECT convert_from(raw, 'UTF8') FROM messages WHERE msgid_synth`)
	if !strings.HasPrefix(raw, "Received: ") || !strings.Contains(raw, "\r\nMessage-ID: <parley-") || strings.Contains(raw, "\n\n") && !strings.Contains(raw, "\r\n\r\n") {
		t.Errorf("synthesised Message-ID not recorded in the bytes, or bare LF kept: %q", raw)
	}
}

// TestMultipleLists: one message to two lists is one transaction; a
// refusal by every list refuses the message.
func TestMultipleLists(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.list("a@lists.example.org", lists.PostOpen, lists.ActionHold)
	f.list("b@lists.example.org", lists.PostMembers, lists.ActionReject)
	f.list("c@lists.example.org", lists.PostMembers, lists.ActionReject)
	if err := f.send("x@example.org", []string{"a@lists.example.org", "b@lists.example.org"}, post("x@example.org", "m1@x", "both")); err != nil {
		t.Errorf("open + members-only: %v, want accepted", err)
	}
	if n := f.count(`SELECT count(*) FROM moderation WHERE state = 'rejected'`); n != 1 {
		t.Errorf("refusal for b not recorded: %d", n)
	}
	err := f.send("x@example.org", []string{"b@lists.example.org", "c@lists.example.org"}, post("x@example.org", "m2@x", "neither"))
	if code(err) != 550 || f.count(`SELECT count(*) FROM moderation WHERE message_id = 'm2@x'`) != 0 {
		t.Errorf("refused by both: %v; want 550 and nothing recorded", err)
	}
}

// TestDatabaseGone: a database failure is a temporary error and leaves
// nothing behind.
func TestDatabaseGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.list("dev@lists.example.org", lists.PostOpen, lists.ActionHold)
	r, err := f.svc.Resolve(t.Context(), "dev@lists.example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Break the archive insert mid-transaction: the trigger makes the
	// INSERT fail after the article counter has been advanced.
	f.db.MustExec(`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$`)
	f.db.MustExec(`CREATE TRIGGER boom BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION boom()`)
	err = f.svc.Accept(t.Context(), ingest.Envelope{From: "x@example.org", Rcpts: []ingest.Recipient{r}, Data: []byte(post("x@example.org", "m@x", "s"))})
	var rej *ingest.Rejection
	if err == nil || errors.As(err, &rej) {
		t.Fatalf("Accept() with a failing database = %v, want a temporary error", err)
	}
	f.db.MustExec(`DROP TRIGGER boom ON messages`)
	if err := f.svc.Accept(t.Context(), ingest.Envelope{From: "x@example.org", Rcpts: []ingest.Recipient{r}, Data: []byte(post("x@example.org", "m@x", "s"))}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	var article int64
	f.db.GetContext(t.Context(), &article, `SELECT article FROM messages WHERE message_id = 'm@x'`)
	if article != 1 {
		t.Errorf("article after a failed attempt = %d, want 1 (no gap)", article)
	}
}

// TestSessionLostMidWrite: when the database session dies in the middle
// of storing (here the server terminates it from a trigger, once), intake
// asks again instead of answering 451: the post is kept, exactly once,
// and the sender gets its 250.
func TestSessionLostMidWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.list("dev@lists.example.org", lists.PostOpen, lists.ActionHold)
	f.list("mod@lists.example.org", lists.PostMembers, lists.ActionHold, "owner:owner@example.org")
	// A sequence, because it is not rolled back with the dying transaction.
	f.db.MustExec(`CREATE SEQUENCE boom_seq`)
	f.db.MustExec(`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF nextval('boom_seq') % 2 = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$`)
	f.db.MustExec(`CREATE TRIGGER boom BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION boom()`)
	f.db.MustExec(`CREATE TRIGGER boom BEFORE INSERT ON moderation FOR EACH ROW EXECUTE FUNCTION boom()`)
	if err := f.send("x@example.org", []string{"dev@lists.example.org"}, post("x@example.org", "lost@x", "s")); err != nil {
		t.Fatalf("post whose session died mid-write: %v, want it stored", err)
	}
	if err := f.send("x@example.org", []string{"mod@lists.example.org"}, post("x@example.org", "held@x", "s")); err != nil {
		t.Fatalf("held post whose session died mid-write: %v, want it stored", err)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE message_id = 'lost@x' AND article = 1`); n != 1 {
		t.Errorf("%d archived as article 1, want exactly 1", n)
	}
	if n := f.count(`SELECT count(*) FROM moderation WHERE message_id = 'held@x'`); n != 1 {
		t.Errorf("%d held, want exactly 1", n)
	}
}

// TestWhatIntakeAdds: a post accepted over SMTP gets a Received: trace
// field on top and, when it has none, a Date: (the arrival time); a post
// whose Message-ID is invalid keeps exactly one Message-ID (the one the
// archive made) and the original as X-Original-Message-ID, imported or
// not; an import keeps its mbox envelope sender and gets no trace field;
// undeclared 8-bit header text is read as windows-1252, not U+FFFD.
func TestWhatIntakeAdds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.list("dev@lists.example.org", lists.PostOpen, lists.ActionHold)
	raw := func(id string) string {
		var r string
		f.db.GetContext(t.Context(), &r, `SELECT convert_from(raw, 'LATIN1') FROM messages WHERE message_id = $1`, id)
		return r
	}
	if err := f.send("bob@example.org", []string{"dev@lists.example.org"}, "From: bob@example.org\nSubject: no date\nMessage-ID: <nodate@x>\n\nhi\n"); err != nil {
		t.Fatal(err)
	}
	got := raw("nodate@x")
	if !strings.HasPrefix(got, "Received: from ") || strings.Count(got, "\r\nDate: ") != 1 {
		t.Errorf("post without Date: stored as\n%s", got)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE message_id = 'nodate@x' AND sent_at IS NOT NULL AND envelope_from = 'bob@example.org'`); n != 1 {
		t.Error("the added Date: is not the post's date, or the envelope sender was not kept")
	}
	if err := f.send("bob@example.org", []string{"dev@lists.example.org"}, "From: bob@example.org\nDate: Mon, 30 Nov 2026 10:00:00 +0000\nMessage-ID: not-a-valid-id\nSubject: bad id\n\nhi\n"); err != nil {
		t.Fatal(err)
	}
	var id string
	f.db.GetContext(t.Context(), &id, `SELECT message_id FROM messages WHERE subject = 'bad id'`)
	got = raw(id)
	if strings.Count(strings.ToLower(got), "\nmessage-id:") != 1 || !strings.Contains(got, "\r\nX-Original-Message-ID: not-a-valid-id\r\n") ||
		strings.Count(got, "Date: ") != 1 {
		t.Errorf("post with an invalid Message-ID: stored as\n%s", got)
	}
	l, _ := lists.Get(t.Context(), f.db, "dev@lists.example.org")
	res, err := f.svc.Import(t.Context(), l, []ingest.ImportItem{{Data: []byte("Message-ID: <>\nSubject: Caf\xe9 cr\xe8me\nDate: Sun, 1 Jan 2006 10:00:00 +0000\n\nold\n"),
		Sender: "raw@old.example", Where: "t"}})
	if err != nil || res[0].Problem != "" {
		t.Fatalf("Import() = %+v, %v", res, err)
	}
	f.db.GetContext(t.Context(), &id, `SELECT message_id FROM messages WHERE source = 'import'`)
	got = raw(id)
	if strings.HasPrefix(got, "Received:") || strings.Count(strings.ToLower(got), "\nmessage-id:")+strings.Count(strings.ToLower(got[:12]), "message-id:") != 1 ||
		!strings.Contains(got, "X-Original-Message-ID: <>") {
		t.Errorf("imported post with Message-ID <>: stored as\n%s", got)
	}
	var subject, sender string
	f.db.QueryRowx(`SELECT subject, envelope_from FROM messages WHERE message_id = $1`, id).Scan(&subject, &sender)
	if subject != "Café crème" || sender != "raw@old.example" {
		t.Errorf("imported subject %q, envelope sender %q; want Café crème, raw@old.example", subject, sender)
	}
}
