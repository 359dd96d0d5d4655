package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/deliver"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/outqueue"
	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// post archives a post to a new list with the given members and queues
// its delivery, as intake does.
func post(t *testing.T, d *sqlx.DB, rcpts ...string) lists.List {
	t.Helper()
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	prefix := "[dev]"
	l, err := lists.Create(t.Context(), d, a, lists.Settings{SubjectPrefix: &prefix}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ms []members.New
	for _, r := range rcpts {
		m, _ := members.ParseNew(r, "", "")
		ms = append(ms, m)
	}
	if _, err := members.Add(t.Context(), d, l.ID, ms); err != nil {
		t.Fatal(err)
	}
	raw := mailmsg.Canonicalize([]byte("From: alice@example.org\nSubject: hello\nMessage-ID: <p@example.org>\n\nhi\n"))
	s, _ := mailmsg.Parse(raw, "h", mailmsg.Limits{})
	if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: "smtp", Queue: true}); err != nil {
		t.Fatal(err)
	}
	return l
}

// run starts the workers over relay until the test ends.
func run(t *testing.T, d *sqlx.DB, relay deliver.Relay) *deliver.Service {
	t.Helper()
	svc := deliver.New(deliver.Options{DB: d, Relay: relay, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Site: deliver.Site{ArchiveURL: "imap://lists.example.org"}, Poll: 20 * time.Millisecond,
		Backoff: outqueue.Backoff{First: 50 * time.Millisecond, Max: 200 * time.Millisecond, GiveUp: time.Hour}})
	ctx, cancel := t.Context(), func() {}
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc
}

// states is the queue's copies by recipient: what is still to send, and
// what failed (a sent copy leaves the queue).
func states(t *testing.T, d *sqlx.DB) map[string]string {
	t.Helper()
	var rows []struct{ Rcpt, State string }
	d.SelectContext(t.Context(), &rows, `SELECT rcpt, state FROM deliveries`)
	out := map[string]string{}
	for _, r := range rows {
		out[r.Rcpt] = r.State
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSMTPRelay: every member gets one copy with its own VERP return path
// and the list's headers; a recipient refused with 451 once gets the post
// on the retry; one refused with 550 fails alone.
func TestSMTPRelay(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	sink := smtpsink.Start(t)
	var tempfails atomic.Int32
	sink.SetRefuse(func(rcpt string) *smtp.SMTPError {
		switch rcpt {
		case "slow@example.net":
			if tempfails.Add(1) == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
		case "gone@example.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	post(t, d, "bob@example.org", "carol@example.org", "slow@example.net", "gone@example.com")
	run(t, d, &deliver.SMTPRelay{Addr: sink.Addr, Hostname: "parley.test", Timeout: 10 * time.Second})
	waitFor(t, "all copies settled", func() bool {
		s := states(t, d)
		return len(s) == 1 && s["gone@example.com"] == "failed" // sent copies leave the queue
	})
	msgs := sink.Messages()
	if len(msgs) != 3 {
		t.Fatalf("sink got %d copies, want 3", len(msgs))
	}
	for _, m := range msgs {
		want := mailaddr.VERP("dev@lists.example.org", m.To[0])
		if len(m.To) != 1 || m.From != want {
			t.Errorf("copy to %v from %q, want one recipient and return path %q", m.To, m.From, want)
		}
		if !strings.Contains(string(m.Data), "List-Id: \"dev@lists.example.org\" <dev.lists.example.org>\r\n") ||
			!strings.Contains(string(m.Data), "Subject: [dev] hello\r\n") {
			t.Errorf("copy to %v lacks list headers:\n%s", m.To, m.Data)
		}
	}
	var code int
	d.GetContext(t.Context(), &code, `SELECT last_code FROM deliveries WHERE rcpt = 'gone@example.com'`)
	if code != 550 {
		t.Errorf("failed copy recorded code %d, want 550", code)
	}
}

// TestLeaseExpiry: copies claimed by a worker that died come back.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	post(t, d, "bob@example.org")
	if _, err := outqueue.Expand(t.Context(), d, 10); err != nil {
		t.Fatal(err)
	}
	ds, err := outqueue.Claim(t.Context(), d, 10, time.Millisecond) // then "crash"
	if err != nil || len(ds) != 1 {
		t.Fatalf("Claim() = %v, %v", ds, err)
	}
	if again, _ := outqueue.Claim(t.Context(), d, 10, time.Minute); len(again) != 0 {
		t.Fatalf("a leased copy was claimed twice")
	}
	time.Sleep(20 * time.Millisecond)
	if n, err := outqueue.Reclaim(t.Context(), d); err != nil || n != 1 {
		t.Fatalf("Reclaim() = %d, %v; want 1", n, err)
	}
	if again, _ := outqueue.Claim(t.Context(), d, 10, time.Minute); len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("after reclaim: %+v, want the copy again on its second attempt", again)
	}
}

// TestSMTPRelayAuth: a smarthost that requires AUTH PLAIN gets the
// configured credentials; wrong ones are a temporary failure (an operator
// mistake must not fail every member for good).
func TestSMTPRelayAuth(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	sink.RequireAuth("parley", "s3cret")
	msg := []byte("Subject: x\r\n\r\nx\r\n")
	good := &deliver.SMTPRelay{Addr: sink.Addr, Hostname: "parley.test", Timeout: 5 * time.Second, Username: "parley", Password: "s3cret"}
	defer good.Close()
	if err := good.Send(t.Context(), "a@l", "b@example.org", msg); err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	bad := &deliver.SMTPRelay{Addr: sink.Addr, Hostname: "parley.test", Timeout: 5 * time.Second, Username: "parley", Password: "wrong"}
	defer bad.Close()
	var perm *deliver.Permanent
	if err := bad.Send(t.Context(), "a@l", "b@example.org", msg); err == nil || errors.As(err, &perm) {
		t.Errorf("wrong credentials: %v, want a temporary failure", err)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("sink got %d messages, want 1", n)
	}
}

// TestBatchedWithoutVERP: with VERP off, copies to one domain share
// transactions; a 452 moves the rest to a new transaction and a refused
// recipient fails alone.
func TestBatchedWithoutVERP(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	sink := smtpsink.Start(t)
	sink.LimitRcpts(2)
	sink.SetRefuse(func(rcpt string) *smtp.SMTPError {
		if rcpt == "gone@one.example" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	l := post(t, d, "a@one.example", "b@one.example", "c@one.example", "gone@one.example", "e@one.example", "f@two.example")
	off := false
	if _, err := lists.Update(t.Context(), d, l.Address, lists.Settings{VERP: &off}); err != nil {
		t.Fatal(err)
	}
	run(t, d, &deliver.SMTPRelay{Addr: sink.Addr, Hostname: "parley.test", Timeout: 10 * time.Second})
	waitFor(t, "all copies settled", func() bool {
		s := states(t, d)
		return len(s) == 1 && s["gone@one.example"] == "failed" // sent copies leave the queue
	})
	var shared bool
	got := map[string]int{}
	for _, m := range sink.Messages() {
		if m.From != "dev-bounces@lists.example.org" {
			t.Errorf("return path %q, want the list's bounce address", m.From)
		}
		shared = shared || len(m.To) > 1
		for _, r := range m.To {
			got[r]++
		}
	}
	if !shared {
		t.Error("no transaction carried more than one recipient")
	}
	for _, r := range []string{"a@one.example", "b@one.example", "c@one.example", "e@one.example", "f@two.example"} {
		if got[r] != 1 {
			t.Errorf("%s got %d copies, want 1", r, got[r])
		}
	}
}

// countingDMARC answers "no strict policy" and counts the questions: each
// rendering of a post asks once.
type countingDMARC struct{ n atomic.Int64 }

func (c *countingDMARC) Strict(context.Context, string) bool { c.n.Add(1); return false }

// TestJobRenderedOnce: a post whose copies are claimed over several
// rounds is loaded, rendered and signed once, not once per round.
func TestJobRenderedOnce(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	var rcpts []string
	for i := range 35 {
		rcpts = append(rcpts, fmt.Sprintf("m%02d@example.org", i))
	}
	post(t, d, rcpts...)
	sink := smtpsink.Start(t)
	dmarc := &countingDMARC{}
	svc := deliver.New(deliver.Options{DB: d, Relay: &deliver.SMTPRelay{Addr: sink.Addr, Hostname: "parley.test", Timeout: 10 * time.Second},
		Logger: slog.New(slog.DiscardHandler), Site: deliver.Site{ArchiveURL: "imap://lists.example.org"},
		Poll: 20 * time.Millisecond, Batch: 10, DMARC: dmarc})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "35 copies sent", func() bool { return len(sink.Messages()) == 35 })
	if n := dmarc.n.Load(); n != 1 {
		t.Errorf("the post was rendered %d times over 4 rounds, want once", n)
	}
}

// TestStalePooledConnection: after the relay restarts (a reload, a
// failover), copies that would go over connections it closed are sent at
// once over fresh ones, not deferred to the retry schedule, and none is
// sent twice.
func TestStalePooledConnection(t *testing.T) {
	t.Parallel()
	for _, verp := range []bool{true, false} {
		t.Run(fmt.Sprintf("verp=%v", verp), func(t *testing.T) { testStalePooledConnection(t, verp) })
	}
}

func testStalePooledConnection(t *testing.T, verp bool) {
	d := pgtest.New(t)
	var rcpts []string
	for i := range 20 {
		rcpts = append(rcpts, fmt.Sprintf("m%02d@example.org", i))
	}
	l := post(t, d, rcpts...)
	if _, err := lists.Update(t.Context(), d, l.Address, lists.Settings{VERP: &verp}); err != nil {
		t.Fatal(err)
	}
	sink := smtpsink.Start(t)
	svc := deliver.New(deliver.Options{DB: d, Relay: &deliver.SMTPRelay{Addr: sink.Addr, Hostname: "parley.test", Timeout: 10 * time.Second},
		Logger: slog.New(slog.DiscardHandler), Site: deliver.Site{ArchiveURL: "imap://lists.example.org"},
		Poll: 20 * time.Millisecond, Workers: 4,
		Backoff: outqueue.Backoff{First: time.Hour, Max: time.Hour, GiveUp: 48 * time.Hour}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	copies := func() int {
		n := 0
		for _, m := range sink.Messages() {
			n += len(m.To)
		}
		return n
	}
	waitFor(t, "the first post's 20 copies", func() bool { return copies() == 20 })
	if err := sink.Restart(); err != nil {
		t.Fatal(err)
	}
	raw := mailmsg.Canonicalize([]byte("From: alice@example.org\nSubject: second\nMessage-ID: <p2@example.org>\n\nagain\n"))
	s, _ := mailmsg.Parse(raw, "h", mailmsg.Limits{})
	if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: "smtp", Queue: true}); err != nil {
		t.Fatal(err)
	}
	svc.Wake()
	waitFor(t, "the second post's 20 copies, none deferred", func() bool { return copies() >= 40 })
	seen := map[string]int{}
	for _, m := range sink.Messages() {
		if strings.Contains(string(m.Data), "Subject: [dev] second") {
			for _, to := range m.To {
				seen[to]++
			}
		}
	}
	for _, r := range rcpts {
		if seen[r] != 1 {
			t.Errorf("%s got %d copies of the second post, want 1", r, seen[r])
		}
	}
}

// TestExpansionWithoutCopies: posts whose jobs expand to no copies (every
// member takes digests, or no mail) are all expanded without waiting for
// the next poll: a round that only expanded jobs did work.
func TestExpansionWithoutCopies(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	l := post(t, d)
	if _, err := d.ExecContext(t.Context(), `INSERT INTO members (list_id, address, address_norm, delivery) VALUES ($1, 'n@example.org', 'n@example.org', 'nomail')`, l.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		raw := mailmsg.Canonicalize(fmt.Appendf(nil, "From: alice@example.org\nSubject: n\nMessage-ID: <n%d@example.org>\n\nhi\n", i))
		s, _ := mailmsg.Parse(raw, "h", mailmsg.Limits{})
		if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: "smtp", Queue: true}); err != nil {
			t.Fatal(err)
		}
	}
	svc := deliver.New(deliver.Options{DB: d, Relay: &deliver.FileRelay{Dir: t.TempDir()}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Poll: time.Hour, Backoff: outqueue.Backoff{First: time.Second, Max: time.Second, GiveUp: time.Hour}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "every job expanded", func() bool {
		var pending int
		d.GetContext(t.Context(), &pending, `SELECT count(*) FROM outbound WHERE state = 'pending'`)
		return pending == 0
	})
}
