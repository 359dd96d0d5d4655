package inbound_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-list/parley/internal/inbound"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newList(t *testing.T) (*sqlx.DB, int64) {
	t.Helper()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d, l.ID
}

func store(t *testing.T, d *sqlx.DB, list int64, kind, body string) {
	t.Helper()
	err := inbound.Store(t.Context(), d, inbound.New{ListID: list, Kind: kind, Rcpt: "dev-" + kind + "@lists.example.org",
		MailFrom: "a@example.org", ContentKey: []byte(body), Raw: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQueues: a retry is stored once; each processor claims only its own
// kind, oldest first; a claimed message is done with the claiming
// transaction, and wake runs only when the handler queued mail.
func TestQueues(t *testing.T) {
	t.Parallel()
	d, list := newList(t)
	store(t, d, list, "request", "help")
	store(t, d, list, "request", "help") // the sender retried
	store(t, d, list, "bounce", "dsn")
	store(t, d, list, "join", "join")
	var got []string
	woken := 0
	drain := func(q inbound.Queue) int {
		n, err := inbound.Drain(t.Context(), d, slog.New(slog.DiscardHandler), func(ctx context.Context) (int64, error) {
			return inbound.Claim(ctx, d, q, func(ctx context.Context, tx *sqlx.Tx, m inbound.Message) (bool, error) {
				got = append(got, m.Kind+":"+string(m.Raw))
				return m.Kind == "join", nil
			}, func() { woken++ })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := drain(inbound.Commands); n != 2 {
		t.Errorf("commands drained %d, want 2", n)
	}
	if n := drain(inbound.Bounces); n != 1 {
		t.Errorf("bounces drained %d, want 1", n)
	}
	if g, w := strings.Join(got, " "), "request:help join:join bounce:dsn"; g != w {
		t.Errorf("handled %s, want %s", g, w)
	}
	if woken != 1 {
		t.Errorf("woken %d times, want once (only the join queued mail)", woken)
	}
	if n := drain(inbound.Commands); n != 0 {
		t.Errorf("a second drain handled %d, want 0: done is done", n)
	}
}

// TestSetAside: a message whose handler keeps failing is retried, then
// set aside with its error after five attempts, and never blocks the
// message behind it.
func TestSetAside(t *testing.T) {
	t.Parallel()
	d, list := newList(t)
	store(t, d, list, "request", "poison")
	store(t, d, list, "request", "fine")
	handled := 0
	for range 5 {
		_, err := inbound.Drain(t.Context(), d, slog.New(slog.DiscardHandler), func(ctx context.Context) (int64, error) {
			return inbound.Claim(ctx, d, inbound.Commands, func(ctx context.Context, tx *sqlx.Tx, m inbound.Message) (bool, error) {
				if string(m.Raw) == "poison" {
					return false, errors.New("cannot parse")
				}
				handled++
				return false, nil
			}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var row struct {
		State    string `db:"state"`
		Attempts int    `db:"attempts"`
		Error    string `db:"last_error"`
	}
	if err := d.Get(&row, `SELECT state, attempts, last_error FROM inbound WHERE raw = 'poison'`); err != nil {
		t.Fatal(err)
	}
	if row.State != "failed" || row.Attempts != 5 || row.Error != "cannot parse" {
		t.Errorf("poison message %+v, want failed after 5 attempts with its error", row)
	}
	if handled != 1 {
		t.Errorf("the good message was handled %d times, want once", handled)
	}
	c := inbound.NewCollector(d, 10*time.Second)
	want := "# HELP parley_inbound_waiting Command mail and bounces stored and not yet processed.\n# TYPE parley_inbound_waiting gauge\nparley_inbound_waiting 0\n"
	if err := promtest.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
