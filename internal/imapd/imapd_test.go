package imapd_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/bcrypt"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/imapd"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	db   *sqlx.DB
	dsn  string
	srv  *imapd.Server
	addr string
	pub  lists.List
	priv lists.List
	raws [][]byte
}

func newFixture(t testing.TB, opts ...func(*imapd.Options, *fixture)) *fixture {
	t.Helper()
	dsn := pgtest.NewDSN(t)
	d, err := db.Open(t.Context(), dsn, db.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := &fixture{db: d, dsn: dsn}
	private := lists.ArchivePrivate
	f.pub = createList(t, f.db, "dev@lists.example.org", lists.Settings{})
	f.priv = createList(t, f.db, "secret@lists.example.org", lists.Settings{Archive: &private})
	for i := 1; i <= 3; i++ {
		raw := fmt.Sprintf("From: Ann Example <ann@example.com>\r\nTo: dev@lists.example.org\r\n"+
			"Subject: question %d about Widgets\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"+
			"Message-ID: <q%d@example.com>\r\n\r\nBody number %d mentions zebras.\r\n", i, i, i)
		if i == 2 {
			raw = "From: bob@example.net\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <q2@example.com>\r\n" +
				"Content-Type: multipart/mixed; boundary=never\r\n\r\nno parts at all\r\n"
		}
		f.raws = append(f.raws, archiveRaw(t, f.db, f.pub.ID, []byte(raw)))
	}
	archiveRaw(t, f.db, f.priv.ID, []byte("From: x@example.com\r\nSubject: private\r\nMessage-ID: <p@x>\r\n\r\nhush\r\n"))
	hash, _ := bcrypt.GenerateFromPassword([]byte("sesame"), bcrypt.MinCost)
	f.db.MustExec(`INSERT INTO members (list_id, address, address_norm, archive_password) VALUES ($1, 'carol@example.com', 'carol@example.com', $2)`, f.priv.ID, string(hash))

	o := imapd.Options{DB: f.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 50 * time.Millisecond, FailedLoginDelay: time.Millisecond}
	for _, opt := range opts {
		opt(&o, f)
	}
	srv := imapd.New(o)
	f.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f.addr = ln.Addr().String()
	return f
}

func createList(t testing.TB, d *sqlx.DB, addr string, s lists.Settings) lists.List {
	t.Helper()
	a, _ := mailaddr.ParseList(addr)
	l, err := lists.Create(t.Context(), d, a, s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func archiveRaw(t testing.TB, d *sqlx.DB, listID int64, raw []byte) []byte {
	t.Helper()
	return archiveRawAt(t, d, listID, raw, time.Now())
}

// archiveRawAt archives raw as if it arrived at when.
func archiveRawAt(t testing.TB, d *sqlx.DB, listID int64, raw []byte, when time.Time) []byte {
	t.Helper()
	raw = mailmsg.Canonicalize(raw)
	sum, err := mailmsg.Parse(raw, "h.example", mailmsg.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tx := d.MustBeginTx(t.Context(), nil)
	defer tx.Rollback()
	if _, err := archive.Insert(t.Context(), tx, archive.Post{ListID: listID, Raw: raw, Summary: sum, Source: "import", ReceivedAt: when}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return raw
}

// archiveState summarises what a write could change: the lists, their
// counters and every archived message's bytes.
func archiveState(t testing.TB, d *sqlx.DB) string {
	t.Helper()
	var s string
	err := d.Get(&s, `SELECT (SELECT count(*) FROM lists) || '/' ||
		(SELECT coalesce(sum(next_article), 0) FROM lists) || '/' ||
		(SELECT count(*) FROM messages) || '/' ||
		(SELECT coalesce(md5(string_agg(md5(raw), '' ORDER BY id)), '') FROM messages)`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dial(t *testing.T, f *fixture, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(f.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialWatching connects and reports every EXISTS the server sends.
func dialWatching(t *testing.T, f *fixture) (*imapclient.Client, <-chan uint32) {
	t.Helper()
	exists := make(chan uint32, 16)
	c := dial(t, f, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	return c, exists
}

// mailboxes lists the top-level mailboxes: INBOX and the lists.
func mailboxes(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	ls, err := c.List("", "%", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Mailbox)
	}
	return names
}

func TestVisibility(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		user, pass string
		want       string
	}{
		{"anonymous", "whatever", "[INBOX dev@lists.example.org]"},
		{"carol@example.com", "sesame", "[INBOX dev@lists.example.org secret@lists.example.org]"},
	}
	for _, tt := range tests {
		c := dial(t, f, nil)
		if err := c.Login(tt.user, tt.pass).Wait(); err != nil {
			t.Fatalf("login %s: %v", tt.user, err)
		}
		if got := fmt.Sprint(mailboxes(t, c)); got != tt.want {
			t.Errorf("%s sees %s, want %s", tt.user, got, tt.want)
		}
	}
	c := dial(t, f, nil)
	if err := c.Login("carol@example.com", "wrong").Wait(); err == nil {
		t.Error("wrong archive password accepted")
	}
	c = dial(t, f, nil)
	c.Login("anonymous", "x").Wait()
	if _, err := c.Select("secret@lists.example.org", nil).Wait(); err == nil {
		t.Error("anonymous selected a private list")
	}
}

func TestSelectFetchByteExact(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f, nil)
	if err := c.Login("anonymous", "").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("dev@lists.example.org", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 3 || sel.UIDNext != 4 || sel.UIDValidity != uint32(f.pub.UIDValidity) {
		t.Errorf("select = %d msgs, uidnext %d, uidvalidity %d; want 3, 4, %d", sel.NumMessages, sel.UIDNext, sel.UIDValidity, f.pub.UIDValidity)
	}
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{
		UID: true, RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{body},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("fetched %d messages, want 3", len(msgs))
	}
	for i, m := range msgs {
		if got, want := m.UID, imap.UID(i+1); got != want {
			t.Errorf("msg %d: UID %d, want %d", i+1, got, want)
		}
		if got := m.FindBodySection(body); !bytes.Equal(got, f.raws[i]) {
			t.Errorf("msg %d: BODY[] differs from the archived bytes:\ngot  %q\nwant %q", i+1, got, f.raws[i])
		}
		if m.RFC822Size != int64(len(f.raws[i])) {
			t.Errorf("msg %d: RFC822.SIZE %d, want %d", i+1, m.RFC822Size, len(f.raws[i]))
		}
	}
	if got, want := msgs[1].Envelope.Subject, "café"; got != want {
		t.Errorf("envelope subject %q, want %q", got, want)
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f, nil)
	c.Login("anonymous", "").Wait()
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		crit imap.SearchCriteria
		want string
	}{
		{"all", imap.SearchCriteria{}, "[1 2 3]"},
		{"body", imap.SearchCriteria{Body: []string{"ZEBRAS"}}, "[1 3]"},
		{"subject decoded", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "café"}}}, "[2]"},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "ann@"}}}, "[1 3]"},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Text: []string{"widgets"}}}}, "[2]"},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"number 1"}}, {Body: []string{"number 3"}}}}}, "[1 3]"},
		{"uid set", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 2, Stop: 0}}}}, "[2 3]"},
		{"larger", imap.SearchCriteria{Larger: 1 << 20}, "[]"},
		{"percent is literal", imap.SearchCriteria{Body: []string{"%"}}, "[]"},
		{"underscore is literal", imap.SearchCriteria{Body: []string{"number_1"}}, "[]"},
		{"backslash is literal", imap.SearchCriteria{Text: []string{`\`}}, "[]"},
		{"body is not header", imap.SearchCriteria{Body: []string{"Widgets"}}, "[]"},
		{"header field present", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Content-Type"}}}, "[2]"},
		{"NUL needle", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "a\x00b"}}}, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := c.UIDSearch(&tt.crit, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(d.AllUIDs()); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWritesRefused(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f, nil)
	c.Login("anonymous", "").Wait()
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	before := archiveState(t, f.db)
	if err := c.Create("new", nil).Wait(); err == nil {
		t.Error("CREATE accepted")
	}
	if err := c.Delete("dev@lists.example.org").Wait(); err == nil {
		t.Error("DELETE accepted")
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "dev@lists.example.org").Wait(); err == nil {
		t.Error("COPY accepted")
	}
	msg := []byte("Subject: x\r\n\r\nx\r\n")
	app := c.Append("dev@lists.example.org", int64(len(msg)), nil)
	app.Write(msg)
	app.Close()
	if _, err := app.Wait(); err == nil {
		t.Error("APPEND accepted")
	}
	if err := c.Expunge().Close(); err != nil {
		t.Errorf("EXPUNGE with nothing marked \\Deleted: %v, want OK (nothing to do)", err)
	}
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err == nil {
		t.Error("EXPUNGE of a message marked \\Deleted accepted")
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Errorf("CLOSE of a SELECTed list: %v, want OK", err)
	}
	if after := archiveState(t, f.db); after != before {
		t.Errorf("archive changed by refused writes: %s -> %s", before, after)
	}
}

// TestIdleSeesNewPosts: with polling only, and with NOTIFY archive and no
// polling to speak of (what parley serve does: the notification comes from
// whichever process archived the post).
func TestIdleSeesNewPosts(t *testing.T) {
	t.Run("poll", func(t *testing.T) { testIdle(t, false) })
	t.Run("notify", func(t *testing.T) { testIdle(t, true) })
}

func testIdle(t *testing.T, listen bool) {
	var f *fixture
	if listen {
		f = newFixture(t, func(o *imapd.Options, f *fixture) { o.DSN, o.PollInterval = f.dsn, time.Hour })
	} else {
		f = newFixture(t)
	}
	c, exists := dialWatching(t, f)
	c.Login("anonymous", "").Wait()
	if _, err := c.Select("dev@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"four", "five"} {
		archiveRaw(t, f.db, f.pub.ID, []byte("From: a@b.c\r\nSubject: "+n+"\r\nMessage-ID: <"+n+"@b.c>\r\n\r\nx\r\n"))
		f.db.MustExec(`SELECT pg_notify('archive', $1)`, fmt.Sprint(f.pub.ID))
	}
	var got []uint32
	timeout := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case n := <-exists:
			got = append(got, n)
		case <-timeout:
			t.Fatalf("EXISTS updates %v, want [4 5]", got)
		}
	}
	if fmt.Sprint(got) != "[4 5]" {
		t.Errorf("EXISTS updates %v, want [4 5] (one per new message)", got)
	}
	idle.Close()
	idle.Wait()
}

func TestLoginRateLimited(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f, nil)
	for i := 0; i < 10; i++ {
		if err := c.Login("carol@example.com", fmt.Sprint("guess", i)).Wait(); err == nil {
			t.Fatalf("guess %d accepted", i)
		}
	}
	if err := c.Login("carol@example.com", "sesame").Wait(); err == nil {
		t.Error("right password accepted after 10 failures from the same IP; want refused until the window passes")
	}
	if err := c.Login("anonymous", "x").Wait(); err != nil {
		t.Errorf("anonymous login refused while rate-limited: %v", err)
	}
}

// TestSearchResultSaved: "$" names the UIDs the last SEARCH RETURN (SAVE)
// found (imapclient can't send SAVE, so this speaks the protocol itself).
func TestSearchResultSaved(t *testing.T) {
	f := newFixture(t)
	out := session(t, f.addr, "a LOGIN anonymous x\r\nb SELECT dev@lists.example.org\r\n"+
		"c UID SEARCH RETURN (SAVE) BODY zebras\r\nd UID FETCH $ (UID)\r\nz LOGOUT\r\n")
	for _, want := range []string{"* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)", "d OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "* 2 FETCH") {
		t.Errorf("FETCH $ returned message 2, which the search did not find:\n%s", out)
	}
}

// TestStoredMetaMatchesComputed: ENVELOPE and BODYSTRUCTURE come from the
// meta stored at ingest, and read exactly as they do computed from the
// raw message (rows without it, or with a stored form of another version).
func TestStoredMetaMatchesComputed(t *testing.T) {
	f := newFixture(t)
	var missing int
	if err := f.db.Get(&missing, `SELECT count(*) FROM messages WHERE imap IS NULL`); err != nil || missing != 0 {
		t.Fatalf("%d messages without stored meta (err %v), want 0", missing, err)
	}
	script := "a LOGIN anonymous x\r\nb SELECT dev@lists.example.org\r\n" +
		"c FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)\r\nz LOGOUT\r\n"
	stored := session(t, f.addr, script)
	if !strings.Contains(stored, "c OK") || !strings.Contains(stored, `"multipart"`) && !strings.Contains(stored, `"text" "plain"`) {
		t.Fatalf("FETCH failed or has no body structures:\n%s", stored)
	}
	for _, set := range []string{`NULL`, `'\x01'::bytea`} {
		f.db.MustExec(`UPDATE messages SET imap = ` + set)
		if got := session(t, f.addr, script); got != stored {
			t.Errorf("with imap = %s the FETCH differs:\ngot  %s\nwant %s", set, got, stored)
		}
	}
}
