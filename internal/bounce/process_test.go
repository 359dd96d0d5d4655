package bounce_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-list/parley/internal/bounce"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func dsn(rcpt, status, diag string) []byte {
	return []byte("From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\nAction: failed\r\nStatus: " + status +
		"\r\nDiagnostic-Code: smtp; " + diag + "\r\n\r\n--b--\r\n")
}

func setup(t *testing.T) (*sqlx.DB, lists.List, *bounce.Processor) {
	t.Helper()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := members.ParseNew("owner@example.org", members.RoleOwner, "")
	bob, _ := members.ParseNew("bob@example.org", members.RoleMember, "")
	if _, err := members.Add(t.Context(), d, l.ID, []members.New{owner, bob}); err != nil {
		t.Fatal(err)
	}
	p := &bounce.Processor{DB: d, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Scoring: bounce.DefaultScoring, Hostname: "h"}
	return d, l, p
}

func receive(t *testing.T, d *sqlx.DB, listID int64, detail string, raw []byte) {
	t.Helper()
	d.MustExec(`INSERT INTO inbound (list_id, kind, rcpt, detail, mail_from, content_key, raw)
		VALUES ($1, 'bounce', 'x', $2, '', gen_random_uuid()::text::bytea, $3)`, listID, detail, raw)
}

// TestScoreAndDisable: five hard bounces (by VERP address) disable the
// member and tell the member and the owners; a DMARC refusal, a bounce
// about a stranger and one that names nobody change nothing. Each is
// logged once, with its list.
func TestScoreAndDisable(t *testing.T) {
	t.Parallel()
	d, l, p := setup(t)
	p.Counts = bounce.NewCounts()
	var logs bytes.Buffer
	p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	receive(t, d, l.ID, "", dsn("bob@example.org", "5.7.1", "550 5.7.1 rejected by the DMARC policy of example.com"))
	receive(t, d, l.ID, "", dsn("stranger@example.net", "5.1.1", "550 no such user"))
	receive(t, d, l.ID, "", []byte("From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nIt did not work.\r\n"))
	for i := range 5 {
		receive(t, d, l.ID, "bob=example.org", dsn("b.o.b@relay.example.net", "5.1.1", fmt.Sprintf("550 5.1.1 gone (%d)", i)))
	}
	n, err := p.ProcessAll(t.Context())
	if err != nil || n != 8 {
		t.Fatalf("ProcessAll() = %d, %v; want 8", n, err)
	}
	events := regexp.MustCompile(`event=(\S+)(?: reason="([^"]*)")?`).FindAllStringSubmatch(logs.String(), -1)
	var got []string
	for _, e := range events {
		got = append(got, strings.TrimSuffix(e[1]+" "+e[2], " "))
	}
	want := "[bounce_recorded bounce_ignored not a member bounce_ignored no recipient bounce_recorded bounce_recorded bounce_recorded bounce_recorded bounce_disabled]"
	if fmt.Sprint(got) != want || strings.Count(logs.String(), "list=dev@lists.example.org") != len(got) {
		t.Errorf("logged %v, want %s, each with its list:\n%s", got, want, logs.String())
	}
	var status string
	d.GetContext(t.Context(), &status, `SELECT status FROM members WHERE address_norm = 'bob@example.org'`)
	if status != "disabled" {
		t.Errorf("after five hard bounces bob is %s, want disabled", status)
	}
	var kinds []string
	d.SelectContext(t.Context(), &kinds, `SELECT kind FROM bounce_events ORDER BY id`)
	if fmt.Sprint(kinds) != "[author_policy hard hard hard hard hard]" {
		t.Errorf("events %v", kinds)
	}
	for result, want := range map[string]float64{"recorded": 6, "disabled": 1, "not_member": 1, "no_recipient": 1, "not_bounce": 0} {
		if got := promtest.ToFloat64(p.Counts.WithLabelValues(result)); got != want {
			t.Errorf("parley_bounces_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	var notices int
	d.GetContext(t.Context(), &notices, `SELECT count(*) FROM outbound WHERE kind = 'notice'`)
	if notices != 2 {
		t.Errorf("%d notices, want 2 (member and owners)", notices)
	}
	// A synchronous refusal at delivery time counts the same way.
	if err := p.RecordSMTP(t.Context(), l.ID, "owner@example.org", 550, "5.1.1 mailbox unavailable"); err != nil {
		t.Fatal(err)
	}
	var score float64
	d.GetContext(t.Context(), &score, `SELECT sum(weight) FROM bounce_events WHERE address_norm = 'owner@example.org'`)
	if score != 1 {
		t.Errorf("owner's score after one refusal = %v, want 1", score)
	}
}
