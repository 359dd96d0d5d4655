package nntpd_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/nntpd"
	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/tlstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// serve starts a server on a database with a public list (dev, three
// posts) and a private one (secret, one post, whose member carol has the
// archive password returned).
func serve(t testing.TB) (addr, password string) {
	addr, password, _ = serveDB(t)
	return addr, password
}

func serveDB(t testing.TB) (addr, password string, d *sqlx.DB) {
	d = pgtest.New(t)
	mk := func(addr string, arch lists.Archive) lists.List {
		a, _ := mailaddr.ParseList(addr)
		policy := lists.PostMembers
		if arch == lists.ArchivePublic {
			policy = lists.PostOpen
		}
		l, err := lists.Create(t.Context(), d, a, lists.Settings{Archive: &arch, PostPolicy: &policy, Description: ptr("The " + addr + " list")}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	dev, secret := mk("dev@lists.example.org", lists.ArchivePublic), mk("secret@lists.example.org", lists.ArchivePrivate)
	for _, p := range []struct {
		l   lists.List
		raw string
	}{
		{dev, "From: Ann <ann@example.org>\nSubject: Shelving\nMessage-ID: <one@example.org>\nDate: Mon, 30 Nov 2026 10:00:00 +0000\nNewsgroups: alt.old\n\nFirst.\n.leading dot\n"},
		{dev, "From: =?utf-8?q?B=C3=B8b?= <bob@example.org>\nSubject: Re: Shelving\nMessage-ID: <two@example.org>\nReferences: <one@example.org>\n\nSecond.\n"},
		{dev, "From: carol@example.org\nSubject: Hours\nMessage-ID: <three@example.org>\nX-Custom: yes\n\nThird.\n"},
		{secret, "From: carol@example.org\nSubject: Budget\nMessage-ID: <budget@example.org>\n\nsecret\n"},
	} {
		raw := mailmsg.Canonicalize([]byte(p.raw))
		sum, err := mailmsg.Parse(raw, "h", mailmsg.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: p.l.ID, Raw: raw, Summary: sum, Source: "smtp", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := members.ParseNew("carol@example.org", "", "")
	if _, err := members.Add(t.Context(), d, secret.ID, []members.New{n}); err != nil {
		t.Fatal(err)
	}
	m, _ := members.Get(t.Context(), d, secret.ID, "carol@example.org")
	pw, err := members.NewArchivePassword(t.Context(), d, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	intake := ingest.New(ingest.Options{DB: d, Logger: log, Hostname: "news.example.org", MaxMessageBytes: 1 << 20,
		QueryTimeout: 10 * time.Second})
	t.Cleanup(intake.Close)
	srv := nntpd.New(nntpd.Options{DB: d, Log: log, Hostname: "news.example.org",
		FailedLoginDelay: time.Millisecond, Intake: intake, MaxArticle: 1 << 20})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), pw, d
}

func ptr[T any](v T) *T { return &v }

// conv holds a conversation: it sends each command and reads the whole
// answer (status line, and the block when there is one).
type conv struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *conv {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	v := &conv{t: t, c: c, r: bufio.NewReader(c)}
	if g := v.line(); !strings.HasPrefix(g, "200 ") {
		t.Fatalf("greeting %q", g)
	}
	return v
}

func (v *conv) line() string {
	l, err := v.r.ReadString('\n')
	if err != nil {
		v.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// multi are the status codes followed by a block.
var multi = map[string]bool{"100": true, "101": true, "211L": true, "215": true, "220": true, "221": true, "222": true,
	"224": true, "225": true, "230": true, "231": true}

func (v *conv) cmd(command string) (status string, block []string) {
	v.t.Helper()
	if _, err := v.c.Write([]byte(command + "\r\n")); err != nil {
		v.t.Fatal(err)
	}
	status = v.line()
	code := status[:3]
	if code == "211" && strings.HasPrefix(strings.ToUpper(command), "LISTGROUP") {
		code = "211L"
	}
	if !multi[code] {
		return status, nil
	}
	for {
		l := v.line()
		if l == "." {
			return status, block
		}
		block = append(block, l)
	}
}

func TestReader(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t)
	v := dial(t, addr)
	tests := []struct {
		cmd, status string
		block       []string // lines that must be in the block
	}{
		{"CAPABILITIES", "101", []string{"VERSION 2", "READER", "OVER MSGID", "HDR"}},
		{"MODE READER", "200", nil},
		{"LIST", "215", []string{"org.example.lists.dev 3 1 n"}},
		{"LIST NEWSGROUPS org.example.*", "215", []string{"org.example.lists.dev\tThe dev@lists.example.org list"}},
		{"LIST OVERVIEW.FMT", "215", []string{"Subject:", ":bytes", "Xref:full"}},
		{"ARTICLE 1", "412", nil},
		{"GROUP org.example.lists.secret", "411", nil},
		{"GROUP alt.nothing", "411", nil},
		{"GROUP org.example.lists.dev", "211 3 1 3 org.example.lists.dev", nil},
		{"LISTGROUP org.example.lists.dev 2-", "211", []string{"2", "3"}},
		{"STAT", "223 1 <one@example.org>", nil},
		{"NEXT", "223 2 <two@example.org>", nil},
		{"LAST", "223 1 <one@example.org>", nil},
		{"LAST", "422", nil},
		{"ARTICLE 1", "220 1 <one@example.org>", []string{"Path: news.example.org!not-for-mail", "Newsgroups: org.example.lists.dev",
			"Xref: news.example.org org.example.lists.dev:1", "First.", "..leading dot"}},
		{"HEAD <two@example.org>", "221 0 <two@example.org>", []string{"Subject: Re: Shelving"}},
		{"BODY 3", "222 3 <three@example.org>", []string{"Third."}},
		{"ARTICLE 99", "423", nil},
		{"ARTICLE <nope@example.org>", "430", nil},
		{"ARTICLE <budget@example.org>", "430", nil},
		{"OVER 1-3", "224", []string{"2\tRe: Shelving\t=?utf-8?q?B=C3=B8b?= <bob@example.org>"}},
		{"XOVER 0-1", "224", nil},
		{"OVER <three@example.org>", "224", []string{"0\tHours\tcarol@example.org", "\t1\tXref: news.example.org org.example.lists.dev:3"}},
		{"HDR Subject 1-2", "225", []string{"1 Shelving", "2 Re: Shelving"}},
		{"HDR X-Custom 3", "225", []string{"3 yes"}},
		{"XHDR message-id <two@example.org>", "221", []string{"0 <two@example.org>"}},
		{"NEWGROUPS 20000101 000000 GMT", "231", []string{"org.example.lists.dev 3 1 n"}},
		{"NEWNEWS org.example.* 20000101 000000 GMT", "230", []string{"<one@example.org>", "<three@example.org>"}},
		{"DATE", "111", nil},
		{"FROBNICATE", "500", nil},
		{"OVER 99999999999999999999", "501", nil},
		{"LIST FOO", "501", nil},
		{strings.Repeat("x", 5000), "501", nil},
		{"QUIT", "205", nil},
	}
	for _, tc := range tests {
		status, block := v.cmd(tc.cmd)
		if !strings.HasPrefix(status, tc.status) {
			t.Errorf("%.40s: %q, want %s", tc.cmd, status, tc.status)
			continue
		}
		joined := "\n" + strings.Join(block, "\n") + "\n"
		for _, want := range tc.block {
			if !strings.Contains(joined, want) {
				t.Errorf("%s: the answer lacks %q:\n%s", tc.cmd, want, joined)
			}
		}
		if strings.Contains(joined, "Newsgroups: alt.old") {
			t.Errorf("%s: the post's own Newsgroups: was kept", tc.cmd)
		}
	}
}

// TestPrivateGroups: a member who logs in sees the private list's group;
// a wrong password does not.
func TestPrivateGroups(t *testing.T) {
	t.Parallel()
	addr, pw := serve(t)
	v := dial(t, addr)
	if s, _ := v.cmd("AUTHINFO USER carol@example.org"); !strings.HasPrefix(s, "381") {
		t.Fatalf("AUTHINFO USER: %q", s)
	}
	if s, _ := v.cmd("AUTHINFO PASS wrong"); !strings.HasPrefix(s, "481") {
		t.Fatalf("a wrong password: %q", s)
	}
	if s, _ := v.cmd("GROUP org.example.lists.secret"); !strings.HasPrefix(s, "411") {
		t.Errorf("after a failed login: %q", s)
	}
	v.cmd("AUTHINFO USER Carol@Example.org")
	if s, _ := v.cmd("AUTHINFO PASS " + pw); !strings.HasPrefix(s, "281") {
		t.Fatalf("login: %q", s)
	}
	if s, _ := v.cmd("GROUP org.example.lists.secret"); s != "211 1 1 1 org.example.lists.secret" {
		t.Errorf("GROUP after login: %q", s)
	}
	if s, block := v.cmd("ARTICLE 1"); !strings.HasPrefix(s, "220") || !strings.Contains(strings.Join(block, "\n"), "secret") {
		t.Errorf("ARTICLE after login: %q", s)
	}
}

// post sends POST and the article (LF line ends become CRLF unless raw).
func (v *conv) post(article string, raw bool) string {
	v.t.Helper()
	if s, _ := v.cmd("POST"); !strings.HasPrefix(s, "340") {
		v.t.Fatalf("POST: %q", s)
	}
	if !raw {
		article = strings.ReplaceAll(article, "\n", "\r\n")
	}
	if _, err := v.c.Write([]byte(article)); err != nil {
		v.t.Fatal(err)
	}
	return v.line()
}

// TestPost: an article posted by news goes through the same intake as
// mail: the same policy, archived once, with the poster as its sender.
func TestPost(t *testing.T) {
	t.Parallel()
	addr, pw, d := serveDB(t)
	d.MustExec(`INSERT INTO members (list_id, address, address_norm) SELECT id, 'carol@example.org', 'carol@example.org'
		FROM lists WHERE address = 'dev@lists.example.org'`)
	v := dial(t, addr)
	count := func(list, msgid string) (n int) {
		d.GetContext(t.Context(), &n, `SELECT count(*) FROM messages m JOIN lists l ON l.id = m.list_id
			WHERE l.address = $1 AND m.message_id = $2 AND m.source = 'nntp'`, list, msgid)
		return n
	}
	article := func(from, groups, id, body string) string {
		return "From: " + from + "\nNewsgroups: " + groups + "\nSubject: by news\nMessage-ID: <" + id + ">\n\n" + body + ".\n"
	}
	for _, tc := range []struct {
		name, article, status string
		raw                   bool
	}{
		{"a stranger to an open list", article("zed@example.net", "org.example.lists.dev", "p1@example.net", "hello\n..dotted\n"), "240", false},
		{"again: idempotent", article("zed@example.net", "org.example.lists.dev", "p1@example.net", "hello\n..dotted\n"), "240", false},
		{"a stranger to a members list", article("zed@example.net", "org.example.lists.secret", "p2@example.net", "x\n"), "441", false},
		{"a member's address without login", article("carol@example.org", "org.example.lists.dev", "p3@example.net", "x\n"), "441", false},
		{"no group of ours", article("zed@example.net", "alt.nowhere", "p4@example.net", "x\n"), "441", false},
		{"bare LF dot does not end it", "From: zed@example.net\r\nNewsgroups: org.example.lists.dev\r\nMessage-ID: <p5@example.net>\r\n\r\nbefore\n.\nafter\r\n.\r\n", "240", true},
		{"too big", article("zed@example.net", "org.example.lists.dev", "p6@example.net", strings.Repeat("x", 2<<20)+"\n"), "441", false},
	} {
		if got := v.post(tc.article, tc.raw); !strings.HasPrefix(got, tc.status) {
			t.Errorf("%s: %q, want %s", tc.name, got, tc.status)
		}
	}
	if n := count("dev@lists.example.org", "p1@example.net"); n != 1 {
		t.Errorf("the posted article is archived %d times, want once", n)
	}
	var raw []byte
	d.GetContext(t.Context(), &raw, `SELECT raw FROM messages WHERE message_id = 'p5@example.net'`)
	if !strings.Contains(string(raw), "before\r\n.\r\nafter") { // intake makes every line end CRLF
		t.Errorf("a bare-LF dot cut the article: %q", raw)
	}
	if n := count("dev@lists.example.org", "p3@example.net"); n != 0 {
		t.Error("a post under a member's address was taken without their login")
	}

	v.cmd("AUTHINFO USER carol@example.org")
	v.cmd("AUTHINFO PASS " + pw)
	if got := v.post(article("someone@example.org", "org.example.lists.secret", "p7@example.org", "x\n"), false); !strings.HasPrefix(got, "441") {
		t.Errorf("a logged-in member posting as someone else: %q", got)
	}
	if got := v.post(article("Carol <carol@example.org>", "org.example.lists.secret,org.example.lists.dev", "p8@example.org", "both\n"), false); !strings.HasPrefix(got, "240") {
		t.Errorf("a member's crosspost: %q", got)
	}
	if count("secret@lists.example.org", "p8@example.org") != 1 || count("dev@lists.example.org", "p8@example.org") != 1 {
		t.Error("the crosspost is not in each list once")
	}
}

// FuzzCommands: any lines, in any state, get answers; the server never
// panics and still serves a fresh connection after.
func FuzzCommands(f *testing.F) {
	for _, s := range []string{"GROUP org.example.lists.dev\r\nOVER 0-\r\nHDR Subject 1-99999999\r\n",
		"LIST ACTIVE *a*a*a*a*a*a*a*b,!x\r\nNEWNEWS * 991231 235959\r\n", "AUTHINFO USER x\r\nAUTHINFO PASS y\r\n",
		"POST\r\nFrom: a@b\r\nNewsgroups: org.example.lists.dev\r\n\r\nx\n.\n\r\n.\r\n", "ARTICLE <a>\r\nLISTGROUP x 5-1\r\nLAST\r\n"} {
		f.Add(s)
	}
	addr, _ := serve(f)
	f.Fuzz(func(t *testing.T, lines string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		go c.Write([]byte(lines + "\r\n.\r\nQUIT\r\n"))
		io.Copy(io.Discard, c)
		c.Close()
		v := &conv{t: t}
		c2, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		v.c, v.r = c2, bufio.NewReader(c2)
		if g := v.line(); !strings.HasPrefix(g, "200 ") {
			t.Fatalf("greeting after %q: %q", lines, g)
		}
		if s, _ := v.cmd("DATE"); !strings.HasPrefix(s, "111 ") {
			t.Fatalf("the server no longer answers: %q", s)
		}
	})
}

// TestTLS: STARTTLS (RFC 4642) turns the session to TLS, forgetting what
// was said before it; nntps speaks TLS from the first byte; a password is
// refused in clear from another machine.
func TestTLS(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	conf := tlstest.SelfSigned(t)
	srv := nntpd.New(nntpd.Options{DB: d, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hostname: "news.example.org", TLS: conf})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	go srv.ServeTLS(sln)
	t.Cleanup(func() { srv.Close() })
	client := &tls.Config{InsecureSkipVerify: true}

	v := &conv{t: t}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	v.c, v.r = c, bufio.NewReader(c)
	v.line()
	if _, caps := v.cmd("CAPABILITIES"); !strings.Contains(strings.Join(caps, " "), "STARTTLS") {
		t.Errorf("STARTTLS not offered: %q", caps)
	}
	// A command sent with STARTTLS, before the handshake, must not run
	// inside TLS (the plaintext injection of CVE-2011-0411).
	if _, err := c.Write([]byte("STARTTLS\r\nDATE\r\n")); err != nil {
		t.Fatal(err)
	}
	if s := v.line(); !strings.HasPrefix(s, "382") {
		t.Fatalf("STARTTLS: %q", s)
	}
	tc := tls.Client(c, client)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	v.c, v.r = tc, bufio.NewReader(tc)
	if s, caps := v.cmd("CAPABILITIES"); !strings.HasPrefix(s, "101") || strings.Contains(strings.Join(caps, " "), "STARTTLS") {
		t.Errorf("after STARTTLS: %q %q", s, caps)
	}
	if s, _ := v.cmd("STARTTLS"); !strings.HasPrefix(s, "502") {
		t.Errorf("a second STARTTLS: %q", s)
	}

	sc, err := tls.Dial("tcp", sln.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	w := &conv{t: t, c: sc, r: bufio.NewReader(sc)}
	if g := w.line(); !strings.HasPrefix(g, "201 ") {
		t.Errorf("nntps greeting: %q", g)
	}
}

// TestNewsgroupName: a list's group is its address reversed unless the
// list names its own; a name that is not a newsgroup's is refused.
func TestNewsgroupName(t *testing.T) {
	t.Parallel()
	if got := nntpd.GroupName("Dev@Lists.Example.ORG"); got != "org.example.lists.dev" {
		t.Errorf("GroupName = %q", got)
	}
	addr, _, d := serveDB(t)
	if _, err := lists.Update(t.Context(), d, "dev@lists.example.org", lists.Settings{Newsgroup: ptr("Not A Group")}); err == nil {
		t.Error("a bad newsgroup name was accepted")
	}
	if _, err := lists.Update(t.Context(), d, "dev@lists.example.org", lists.Settings{Newsgroup: ptr("local.library.dev")}); err != nil {
		t.Fatal(err)
	}
	v := dial(t, addr)
	if _, block := v.cmd("LIST ACTIVE local.*"); len(block) != 1 || !strings.HasPrefix(block[0], "local.library.dev 3 1") {
		t.Errorf("LIST after renaming: %q", block)
	}
}

// TestReadAhead: articles fetched one after another, one of them too big
// to read ahead, come back whole and in order.
func TestReadAhead(t *testing.T) {
	t.Parallel()
	addr, _, d := serveDB(t)
	var l lists.List
	l, _ = lists.Get(t.Context(), d, "dev@lists.example.org")
	big := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 6000) // ~380 KB
	for i, body := range []string{"small four\n", big, "small six\n"} {
		raw := mailmsg.Canonicalize([]byte("From: ann@example.org\nSubject: ahead\nMessage-ID: <ahead" + string(rune('a'+i)) + "@example.org>\n\n" + body))
		sum, _ := mailmsg.Parse(raw, "h", mailmsg.Limits{})
		if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: sum, Source: "smtp", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	v := dial(t, addr)
	v.cmd("GROUP org.example.lists.dev")
	for n := 1; n <= 6; n++ {
		s, block := v.cmd("BODY " + strconv.Itoa(n))
		if !strings.HasPrefix(s, "222 "+strconv.Itoa(n)+" ") {
			t.Fatalf("BODY %d: %q", n, s)
		}
		body := strings.Join(block, "\n") + "\n"
		want := map[int]string{4: "small four\n", 5: strings.ReplaceAll(big, "\r\n", "\n"), 6: "small six\n"}[n]
		if want != "" && body != want {
			t.Errorf("BODY %d: %d bytes, want %d", n, len(body), len(want))
		}
	}
}

// TestHostile: input built to hurt gets the right code, and the server
// keeps serving: huge and backwards ranges, overflowing numbers, a 1 MB
// line, NULs, a wildmat made for backtracking, an article to a private
// group, an article that never ends.
func TestHostile(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t)
	v := dial(t, addr)
	v.cmd("GROUP org.example.lists.dev")
	for _, tc := range []struct{ cmd, status string }{
		{"OVER 0-", "224"},
		{"OVER 5-1", "224"},
		{"OVER 1-9223372036854775807", "224"},
		{"ARTICLE -1", "423"},
		{"ARTICLE 99999999999999999999", "423"},
		{"LISTGROUP org.example.lists.dev 9223372036854775806-", "211"},
		{"HDR Subject 0-", "225"},
		{"LIST ACTIVE " + strings.Repeat("*a", 200) + "*b", "215"},
		{"GROUP org.example\x00.lists.dev", "411"},
		{strings.Repeat("A", 1<<20), "501"},
		{"NEWNEWS * 99999999 999999", "501"},
		{"AUTHINFO PASS x", "482"},
		{"DATE", "111"},
	} {
		if s, _ := v.cmd(tc.cmd); !strings.HasPrefix(s, tc.status) {
			t.Errorf("%.40q: %q, want %s", tc.cmd, s, tc.status)
		}
	}
	if got := v.post("From: zed@example.net\nNewsgroups: org.example.lists.secret\nMessage-ID: <h1@example.net>\n\nx\n.\n", false); !strings.HasPrefix(got, "441") {
		t.Errorf("a post to a private group without login: %q", got)
	}
	// An article that never ends: the client goes, the server stays.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("POST\r\nFrom: zed@example.net\r\nNewsgroups: org.example.lists.dev\r\n\r\nno end\r\n"))
	time.Sleep(100 * time.Millisecond)
	c.Close()
	w := dial(t, addr)
	if s, _ := w.cmd("DATE"); !strings.HasPrefix(s, "111") {
		t.Errorf("after an article that never ended: %q", s)
	}
}
