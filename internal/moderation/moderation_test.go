package moderation_test

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/moderation"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	t   *testing.T
	d   *sqlx.DB
	svc *moderation.Service
}

func newFixture(t *testing.T) *fixture {
	d := pgtest.New(t)
	return &fixture{t: t, d: d, svc: moderation.NewService(moderation.Options{DB: d, Logger: slog.New(slog.DiscardHandler), Hostname: "parley.test"})}
}

func (f *fixture) list(addr string, owners ...string) lists.List {
	f.t.Helper()
	a, _ := mailaddr.ParseList(addr)
	l, err := lists.Create(f.t.Context(), f.d, a, lists.Settings{}, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, o := range owners {
		n, _ := members.ParseNew(o, members.RoleOwner, "")
		if _, err := members.Add(f.t.Context(), f.d, l.ID, []members.New{n}); err != nil {
			f.t.Fatal(err)
		}
	}
	return l
}

// hold holds a post from "from" in its own transaction, as intake does.
func (f *fixture) hold(l lists.List, from, msgid string) (int64, bool) {
	f.t.Helper()
	raw := mailmsg.Canonicalize([]byte(fmt.Sprintf("From: %s\nSubject: question %s\nMessage-ID: <%s>\n\nbody\n", from, msgid, msgid)))
	sum, err := mailmsg.Parse(raw, "parley.test", mailmsg.Limits{})
	if err != nil {
		f.t.Fatal(err)
	}
	tx := f.d.MustBeginTx(f.t.Context(), nil)
	defer tx.Rollback()
	dup, err := f.svc.Hold(f.t.Context(), tx, l, moderation.New{ListID: l.ID, Rule: "moderated", Reason: "every post is held",
		MailFrom: from, Raw: raw, Summary: sum})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		f.t.Fatal(err)
	}
	var id int64
	f.d.Get(&id, `SELECT id FROM moderation WHERE message_id = $1`, msgid)
	return id, dup
}

func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.d.Get(&n, q, args...); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestHeldLifecycle: a held post is recorded once and its moderators are
// told once; approving archives it and queues its delivery; rejecting
// tells the author why; a decided post cannot be decided again.
func TestHeldLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.list("dev@lists.example.org", "owner@example.org")
	first, _ := f.hold(l, "bob@example.org", "h1@x")
	if _, dup := f.hold(l, "bob@example.org", "h1@x"); !dup {
		t.Error("holding the same post again: not reported as a duplicate")
	}
	second, _ := f.hold(l, "bob@example.org", "h2@x")
	if n := f.count(`SELECT count(*) FROM outbound WHERE kind = 'notice' AND rcpts = '{owner@example.org}'`); n != 2 {
		t.Errorf("%d notices to the owner, want 2 (one per held post)", n)
	}
	if hs, err := moderation.HeldPosts(t.Context(), f.d, l.ID); err != nil || len(hs) != 2 {
		t.Errorf("HeldPosts() = %d, %v; want 2", len(hs), err)
	}
	st, err := f.svc.Approve(t.Context(), 0, first, "test")
	if err != nil || st.Article != 1 {
		t.Fatalf("Approve() = %+v, %v", st, err)
	}
	if err := f.svc.Reject(t.Context(), 0, second, "off topic", "test"); err != nil {
		t.Fatalf("Reject() = %v", err)
	}
	if _, err := f.svc.Approve(t.Context(), 0, second, "test"); !errors.Is(err, moderation.ErrNotHeld) {
		t.Errorf("approving a rejected post: %v, want ErrNotHeld", err)
	}
	if n := f.count(`SELECT count(*) FROM outbound WHERE kind = 'notice' AND rcpts = '{bob@example.org}' AND convert_from(body, 'UTF8') LIKE '%off topic%'`); n != 1 {
		t.Errorf("%d rejection notices to the author, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM outbound WHERE kind = 'post'`); n != 1 {
		t.Errorf("%d post jobs after approval, want 1", n)
	}
	p, err := moderation.Get(t.Context(), f.d, second)
	if err != nil || p.State != moderation.Rejected {
		t.Errorf("Get(rejected) = %+v, %v", p, err)
	}
}

// TestHeldBelongsToList: a decision scoped to one list cannot touch
// another list's held post.
func TestHeldBelongsToList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.list("a@lists.example.org"), f.list("b@lists.example.org")
	id, _ := f.hold(b, "x@example.org", "hb@x")
	if _, err := f.svc.Approve(t.Context(), a.ID, id, "a's owner"); !errors.Is(err, moderation.ErrNotHeld) {
		t.Fatalf("approving b's post as a's moderator: %v, want ErrNotHeld", err)
	}
	if err := f.svc.Discard(t.Context(), a.ID, id, "a's owner"); !errors.Is(err, moderation.ErrNotHeld) {
		t.Fatalf("discarding b's post as a's moderator: %v, want ErrNotHeld", err)
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("%d posts archived", n)
	}
	if err := f.svc.Discard(t.Context(), b.ID, id, "b's owner"); err != nil {
		t.Fatalf("discarding as b's moderator: %v", err)
	}
}

// TestRobotsAreNotTold: rejecting a robot's post tells nobody (it would
// only answer the notice), and a list without owners holds posts all the
// same.
func TestRobotsAreNotTold(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.list("dev@lists.example.org")
	id, _ := f.hold(l, "MAILER-DAEMON@mx.example.com", "robot@x")
	if err := f.svc.Reject(t.Context(), 0, id, "no", "test"); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM outbound`); n != 0 {
		t.Errorf("%d notices queued, want none (no owner to tell, a robot to reject)", n)
	}
}
