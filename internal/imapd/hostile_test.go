package imapd_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/imapd"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// TestHostileCommands replays hostile and malformed command lines: each
// gets a tagged refusal (never an untagged answer that looks like data),
// nothing is written, and the server answers the next connection.
func TestHostileCommands(t *testing.T) {
	f := newFixture(t)
	login := "a LOGIN anonymous x\r\nb SELECT dev@lists.example.org\r\n"
	tests := []struct {
		name, script string
		want         []string // substrings of the transcript
		not          []string
	}{
		{"commands before login", "c SELECT dev@lists.example.org\r\nd FETCH 1 (BODY[])\r\ne LIST \"\" *\r\n",
			[]string{"c BAD", "d BAD", "e BAD"}, []string{"dev@lists"}},
		{"fetch before select", "a LOGIN anonymous x\r\nc FETCH 1 (UID)\r\n", []string{"c BAD"}, nil},
		{"malformed sequence sets", login + "c FETCH 1:x (UID)\r\nd FETCH 0 (UID)\r\n",
			[]string{"c BAD", "d BAD"}, []string{"* 1 FETCH", "SERVERBUG"}},
		{"UID range past the end", login + "c UID FETCH 4294967295:* (UID)\r\n", []string{"* 3 FETCH (UID 3)", "c OK"}, nil},
		{"SEARCH nested 200 deep", login + "c SEARCH " + strings.Repeat("OR ", 200) + strings.Repeat("ALL ", 201) + "\r\n",
			[]string{"c NO [LIMIT]"}, []string{"* SEARCH"}},
		{"NOT nested 100 deep", login + "c SEARCH " + strings.Repeat("NOT ", 100) + "ALL\r\n", []string{"c NO [LIMIT]"}, nil},
		{"APPEND of 100 MB", login + "c APPEND dev@lists.example.org {100000000}\r\n",
			[]string{"c NO [TOOBIG]"}, []string{"+ Ready"}},
		{"literal of 100 MB in SEARCH", login + "c SEARCH BODY {100000000}\r\n", []string{"c NO"}, []string{"+ Ready"}},
		{"200 KB command line", login + "c SEARCH BODY " + strings.Repeat("x", 200000) + "\r\n", []string{"c NO"}, nil},
	}
	before := archiveState(t, f.db)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := session(t, f.addr, tt.script+"z LOGOUT\r\n")
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("transcript lacks %q:\n%.2000s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("transcript has %q:\n%.2000s", n, out)
				}
			}
			if out := session(t, f.addr, "a CAPABILITY\r\nz LOGOUT\r\n"); !strings.Contains(out, "a OK") {
				t.Fatalf("server no longer answers: %q", out)
			}
		})
	}
	if after := archiveState(t, f.db); after != before {
		t.Errorf("archive changed: %s -> %s", before, after)
	}
}

// TestReadOnlyRole: the IMAP side works through a role that may only read
// (database.reader_url), LISTEN for new posts included; the role really
// cannot write.
func TestReadOnlyRole(t *testing.T) {
	f := newFixture(t, func(o *imapd.Options, f *fixture) {
		reader := pgtest.ReaderDSN(t, f.dsn)
		pool, err := db.Open(t.Context(), reader, db.Options{MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		if _, err := pool.Exec(`UPDATE lists SET next_article = next_article + 1`); err == nil {
			t.Fatal("the reader role could write")
		}
		o.DB, o.DSN, o.PollInterval = pool, reader, time.Hour
	})
	c, exists := dialWatching(t, f)
	if err := c.Login("carol@example.com", "sesame").Wait(); err != nil {
		t.Fatalf("member login through the reader role: %v", err)
	}
	if got := fmt.Sprint(mailboxes(t, c)); got != "[INBOX dev@lists.example.org secret@lists.example.org]" {
		t.Errorf("mailboxes %s", got)
	}
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	d, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{"zebras"}}, nil).Wait()
	if err != nil || fmt.Sprint(d.AllUIDs()) != "[1 3]" {
		t.Errorf("SEARCH BODY through the reader role: %v (err %v), want [1 3]", d.AllUIDs(), err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	archiveRaw(t, f.db, f.pub.ID, []byte("From: a@b.c\r\nSubject: r\r\nMessage-ID: <r@b.c>\r\n\r\nx\r\n"))
	f.db.MustExec(`SELECT pg_notify('archive', $1)`, fmt.Sprint(f.pub.ID))
	select {
	case n := <-exists:
		if n != 4 {
			t.Errorf("EXISTS %d, want 4", n)
		}
	case <-time.After(10 * time.Second):
		t.Error("no EXISTS through the reader role's LISTEN")
	}
	idle.Close()
	idle.Wait()
}

// TestMetrics: sessions, logins by result and command timings are counted.
func TestMetrics(t *testing.T) {
	m := imapd.NewMetrics()
	f := newFixture(t, func(o *imapd.Options, _ *fixture) { o.Metrics = m })
	c := dial(t, f, nil)
	c.Login("carol@example.com", "wrong").Wait()
	if err := c.Login("anonymous", "x").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true}).Collect()
	c.UIDSearch(&imap.SearchCriteria{Body: []string{"zebras"}}, nil).Wait()
	if got := promtest.ToFloat64(m.Sessions); got != 1 {
		t.Errorf("sessions %v with one connection open, want 1", got)
	}
	for result, want := range map[string]float64{"anonymous": 1, "failed": 1, "member": 0} {
		if got := promtest.ToFloat64(m.Logins.WithLabelValues(result)); got != want {
			t.Errorf("logins{result=%s} = %v, want %v", result, got, want)
		}
	}
	if n := promtest.CollectAndCount(m.Commands); n != 3 {
		t.Errorf("%d command series (want select, fetch, search)", n)
	}
	c.Logout().Wait()
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for promtest.ToFloat64(m.Sessions) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := promtest.ToFloat64(m.Sessions); got != 0 {
		t.Errorf("sessions %v after logout, want 0", got)
	}
}

// TestManyFullFetches: two dozen sessions fetch every message of the
// largest list at once while others start the same fetch and hang up;
// each full reader gets every byte, and a reader of another list is
// served meanwhile.
func TestManyFullFetches(t *testing.T) {
	f := newFixture(t, func(o *imapd.Options, _ *fixture) { o.MaxConnsPerIP = 100 })
	big := createList(t, f.db, "big@lists.example.org", lists.Settings{})
	var want int64
	for i := range 300 {
		raw := fmt.Sprintf("From: a@example.com\r\nSubject: big %d\r\nMessage-ID: <big%d@example.com>\r\n\r\n%s\r\n",
			i, i, strings.Repeat(fmt.Sprintf("line %d of a long message\r\n", i), 300))
		want += int64(len(archiveRaw(t, f.db, big.ID, []byte(raw))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 24 {
		wg.Go(func() {
			c, err := imapclient.DialInsecure(f.addr, nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := c.Login("anonymous", "x").Wait(); err != nil {
				errs <- err
				return
			}
			if _, err := c.Select(big.Address, nil).Wait(); err != nil {
				errs <- err
				return
			}
			msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			var got int64
			for _, m := range msgs {
				for _, b := range m.BodySection {
					got += int64(len(b.Bytes))
				}
			}
			if err != nil || len(msgs) != 300 || got != want {
				errs <- fmt.Errorf("FETCH 1:*: %d messages, %d bytes of %d, err %v", len(msgs), got, want, err)
			}
		})
	}
	for range 8 {
		wg.Go(func() {
			conn, err := net.Dial("tcp", f.addr)
			if err != nil {
				errs <- err
				return
			}
			fmt.Fprintf(conn, "a LOGIN anonymous x\r\nb SELECT %s\r\nc FETCH 1:* BODY.PEEK[]\r\n", big.Address)
			io.CopyN(io.Discard, conn, 20<<10)
			conn.Close()
		})
	}
	c := dial(t, f, nil)
	if err := c.Login("anonymous", "x").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect(); err != nil || len(msgs) != 1 {
		t.Errorf("a reader of another list during the storm: %d messages, %v", len(msgs), err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("NOOP after the storm: %v", err)
	}
}
