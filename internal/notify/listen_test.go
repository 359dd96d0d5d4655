package notify_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/notify"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestListen: once LISTEN has taken effect the listener says notifications
// may have been missed (none was heard before), then hands over every
// payload sent on its channel and none sent on another.
func TestListen(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDSN(t)
	d, err := db.Open(t.Context(), dsn, db.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, missed := make(chan string, 10), make(chan struct{}, 10)
	l := notify.Listen(dsn, notify.Archive, slog.New(slog.DiscardHandler),
		func(p string) { got <- p }, func() { missed <- struct{}{} })
	defer l.Close()
	select {
	case <-missed:
	case <-time.After(30 * time.Second):
		t.Fatal("no missed() once listening")
	}
	for _, n := range [][2]string{{notify.Outbound, "x"}, {notify.Archive, "7"}} {
		if _, err := d.ExecContext(t.Context(), `SELECT pg_notify($1, $2)`, n[0], n[1]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case p := <-got:
		if p != "7" {
			t.Errorf("payload %q, want 7 (the other channel's must not arrive)", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("notification not delivered")
	}
}
