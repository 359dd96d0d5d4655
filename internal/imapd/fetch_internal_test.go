package imapd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// testSession is a session on a list of n posts of about size bytes each.
func testSession(t *testing.T, n, size int) *session {
	t.Helper()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("big@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		raw := mailmsg.Canonicalize([]byte(fmt.Sprintf("Subject: %d\r\nMessage-ID: <%d@x>\r\n\r\n%s\r\n", i, i, strings.Repeat("x", size))))
		sum, err := mailmsg.Parse(raw, "h", mailmsg.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: sum, Source: "import", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	srv := &Server{o: Options{DB: d, QueryTimeout: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	return &session{srv: srv, log: srv.o.Log, sel: &selected{mailbox: mailbox{name: l.Address, listID: l.ID},
		known: uint32(n), flags: map[uint32][]imap.Flag{}}}
}

func articles(rows []row) string {
	var s []string
	for _, r := range rows {
		s = append(s, fmt.Sprint(r.Article))
	}
	return strings.Join(s, " ")
}

// TestLoadBudget: a body batch stops after the message that takes it past
// the byte budget; the first message always comes, however large.
func TestLoadBudget(t *testing.T) {
	s := testSession(t, 6, 1000)
	tests := []struct {
		budget int64
		want   string
	}{
		{1, "1"},
		{1500, "1 2"},
		{2500, "1 2 3"},
		{1 << 20, "1 2 3 4 5 6"},
	}
	for _, tt := range tests {
		rows, err := s.load(context.Background(), 1, 6, query{body: true, budget: tt.budget})
		if err != nil {
			t.Fatal(err)
		}
		if got := articles(rows); got != tt.want {
			t.Errorf("budget %d: articles %s, want %s", tt.budget, got, tt.want)
		}
	}
	var got []string
	for b := range s.batches(context.Background(), []span{{2, 6}}, query{body: true, budget: 1500}) {
		if b.err != nil {
			t.Fatal(b.err)
		}
		got = append(got, articles(b.rows))
	}
	if g, want := strings.Join(got, ","), "2 3,4 5,6"; g != want {
		t.Errorf("batches of 2..6 with budget 1500: %s, want %s", g, want)
	}
}

// TestReadAhead: single-message fetches are served from one load of the
// messages that follow, and cross into the next load seamlessly.
func TestReadAhead(t *testing.T) {
	s := testSession(t, readAheadCount+6, 100)
	for uid := uint32(1); uid <= readAheadCount+6; uid++ {
		r, err := s.readAhead(uid)
		if err != nil || r == nil || r.Article != int64(uid) || !strings.Contains(string(r.Raw), fmt.Sprintf("Subject: %d\r\n", uid)) {
			t.Fatalf("readAhead(%d) = %+v, %v", uid, r, err)
		}
		if uid == 1 && len(s.sel.ahead) != readAheadCount {
			t.Errorf("first read-ahead holds %d messages, want %d", len(s.sel.ahead), readAheadCount)
		}
	}
}
