package imapd_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/parley-list/parley/internal/imapd"
	"github.com/parley-list/parley/internal/lists"
)

// TestYearViews: each year of a list is a child mailbox holding the
// posts archived that year, with the list's UIDs and UIDVALIDITY; inside
// it, sequence numbers count the view's own messages.
func TestYearViews(t *testing.T) {
	f := newFixture(t)
	l := createList(t, f.db, "years@lists.example.org", lists.Settings{})
	at := func(y int) time.Time { return time.Date(y, 6, 1, 12, 0, 0, 0, time.UTC) }
	var raws [][]byte
	for i, y := range []int{2024, 2025, 2024, 2025, 2026} { // article 3: an old post imported late
		raw := fmt.Sprintf("From: a@example.com\r\nSubject: post %d\r\nMessage-ID: <y%d@example.com>\r\n\r\nbody of post %d\r\n", i+1, i+1, i+1)
		raws = append(raws, archiveRawAt(t, f.db, l.ID, []byte(raw), at(y)))
	}
	c := dial(t, f, nil)
	if err := c.Login("anonymous", "x").Wait(); err != nil {
		t.Fatal(err)
	}

	ls, err := c.List("", "years@*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ls {
		got = append(got, fmt.Sprint(d.Mailbox, d.Attrs))
	}
	want := `[years@lists.example.org[\HasChildren] years@lists.example.org/2024[\HasNoChildren] ` +
		`years@lists.example.org/2025[\HasNoChildren] years@lists.example.org/2026[\HasNoChildren]]`
	if fmt.Sprint(got) != want {
		t.Errorf("LIST years@*:\n got %s\nwant %s", got, want)
	}

	st, err := c.Status("years@lists.example.org/2025", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 2 || st.UIDNext != 6 || st.UIDValidity != uint32(l.UIDValidity) {
		t.Errorf("STATUS /2025 = %d msgs, UIDNEXT %d, UIDVALIDITY %d; want 2, 6, %d", *st.NumMessages, st.UIDNext, st.UIDValidity, l.UIDValidity)
	}

	sel, err := c.Select("years@lists.example.org/2024", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 2 || sel.UIDValidity != uint32(l.UIDValidity) {
		t.Errorf("SELECT /2024 = %d msgs, UIDVALIDITY %d; want 2, %d", sel.NumMessages, sel.UIDValidity, l.UIDValidity)
	}
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("FETCH 1:2: %v, %d messages", err, len(msgs))
	}
	for i, wantUID := range []imap.UID{1, 3} {
		if msgs[i].SeqNum != uint32(i+1) || msgs[i].UID != wantUID || !bytes.Equal(msgs[i].FindBodySection(body), raws[wantUID-1]) {
			t.Errorf("message %d: seq %d UID %d; want seq %d UID %d with article %d's bytes", i, msgs[i].SeqNum, msgs[i].UID, i+1, wantUID, wantUID)
		}
	}
	if ms, _ := c.Fetch(imap.UIDSetNum(2), &imap.FetchOptions{UID: true}).Collect(); len(ms) != 0 {
		t.Errorf("UID FETCH 2 in /2024 returned %d messages; article 2 is from 2025", len(ms))
	}

	searches := []struct {
		name string
		uid  bool
		crit imap.SearchCriteria
		want string
	}{
		{"all by seq", false, imap.SearchCriteria{}, "[1 2]"},
		{"all by uid", true, imap.SearchCriteria{}, "[1 3]"},
		{"body by seq", false, imap.SearchCriteria{Body: []string{"post 3"}}, "[2]"},
		{"seq set", true, imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(2)}}, "[3]"},
		{"other year's post", true, imap.SearchCriteria{Body: []string{"post 2"}}, "[]"},
	}
	for _, tt := range searches {
		var d *imap.SearchData
		if tt.uid {
			d, err = c.UIDSearch(&tt.crit, nil).Wait()
		} else {
			d, err = c.Search(&tt.crit, nil).Wait()
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		g := fmt.Sprint(d.AllSeqNums())
		if tt.uid {
			g = fmt.Sprint(d.AllUIDs())
		}
		if g != tt.want {
			t.Errorf("search %s: got %s, want %s", tt.name, g, tt.want)
		}
	}

	if _, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	d, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, nil).Wait()
	if err != nil || fmt.Sprint(d.AllUIDs()) != "[3]" {
		t.Errorf("flagged after STORE 2 +FLAGS: %v (err %v), want [3]", d.AllUIDs(), err)
	}

	for _, name := range []string{"years@lists.example.org/1999", "years@lists.example.org/abcd", "years@lists.example.org/20245"} {
		if _, err := c.Select(name, nil).Wait(); err == nil {
			t.Errorf("SELECT %s succeeded, want NO", name)
		}
	}
}

// TestYearViewIdle: a new post appears in the view of its year.
func TestYearViewIdle(t *testing.T) {
	f := newFixture(t)
	year := time.Now().UTC().Year()
	c, exists := dialWatching(t, f)
	c.Login("anonymous", "").Wait()
	name := fmt.Sprintf("dev@lists.example.org/%d", year)
	sel, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	archiveRawAt(t, f.db, f.pub.ID, []byte("From: a@b.c\r\nSubject: old\r\nMessage-ID: <old@b.c>\r\n\r\nx\r\n"), time.Date(year-3, 1, 1, 0, 0, 0, 0, time.UTC))
	archiveRaw(t, f.db, f.pub.ID, []byte("From: a@b.c\r\nSubject: new\r\nMessage-ID: <new@b.c>\r\n\r\nx\r\n"))
	select {
	case n := <-exists:
		if n != sel.NumMessages+1 {
			t.Errorf("EXISTS %d, want %d", n, sel.NumMessages+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS for the new post")
	}
	idle.Close()
	idle.Wait()
	msgs, err := c.Fetch(imap.SeqSetNum(sel.NumMessages+1), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || !strings.Contains(msgs[0].Envelope.Subject, "new") || msgs[0].UID != 5 {
		t.Errorf("the new message: %+v (err %v), want UID 5 with subject new", msgs, err)
	}
}

// TestInboxSearch: INBOX's one message is searched like any other.
func TestInboxSearch(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f, nil)
	c.Login("anonymous", "").Wait()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for needle, want := range map[string]string{"read-only": "[1]", "no such words here": "[]"} {
		d, err := c.Search(&imap.SearchCriteria{Body: []string{needle}}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(d.AllSeqNums()); got != want {
			t.Errorf("SEARCH BODY %q in INBOX: got %s, want %s", needle, got, want)
		}
	}
}

// TestBinaryUnknownCTE: BINARY of a part in an encoding the server can't
// decode is refused with UNKNOWN-CTE (RFC 3516), not answered empty.
func TestBinaryUnknownCTE(t *testing.T) {
	f := newFixture(t)
	l := createList(t, f.db, "cte@lists.example.org", lists.Settings{})
	archiveRaw(t, f.db, l.ID, []byte("From: a@example.com\r\nSubject: cte\r\nMessage-ID: <cte@example.com>\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"+
		"--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--b--\r\n"))
	out := session(t, f.addr, "a LOGIN anonymous x\r\nb SELECT cte@lists.example.org\r\n"+
		"c FETCH 1 (BINARY.PEEK[1])\r\nd FETCH 1 (BINARY.PEEK[2])\r\ne FETCH 1 (BINARY.SIZE[2])\r\nz LOGOUT\r\n")
	for _, want := range []string{"BINARY[1] ~{5}\r\nhello", "c OK", "d NO [UNKNOWN-CTE]", "e NO [UNKNOWN-CTE]"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FETCH ()") {
		t.Errorf("an empty FETCH response was written before the NO:\n%s", out)
	}
}

// TestNoopHearsNotifiedPosts: after each command the session looks for
// news only when told or when the poll interval has passed; a notified
// post reaches a client that only sends NOOP.
func TestNoopHearsNotifiedPosts(t *testing.T) {
	f := newFixture(t, func(o *imapd.Options, f *fixture) { o.DSN, o.PollInterval = f.dsn, time.Hour })
	c, exists := dialWatching(t, f)
	c.Login("anonymous", "").Wait()
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	archiveRaw(t, f.db, f.pub.ID, []byte("From: a@b.c\r\nSubject: n\r\nMessage-ID: <n@b.c>\r\n\r\nx\r\n"))
	f.db.MustExec(`SELECT pg_notify('archive', $1)`, fmt.Sprint(f.pub.ID))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-exists:
			if n != 4 {
				t.Errorf("EXISTS %d, want 4", n)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("NOOP never reported the notified post")
}
