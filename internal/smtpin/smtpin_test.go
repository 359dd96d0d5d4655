package smtpin_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/smtpin"
	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/tlstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type rig struct {
	t    *testing.T
	db   *sqlx.DB
	addr string
}

// start runs an SMTP (or LMTP) server over a fresh database with lists
// open@ (open), closed@ (members only, non-members rejected, one member).
func start(t *testing.T, change func(o *smtpin.Options)) *rig {
	t.Helper()
	d := pgtest.New(t)
	for _, spec := range []struct {
		addr   string
		policy lists.PostPolicy
	}{{"open@lists.example.org", lists.PostOpen}, {"closed@lists.example.org", lists.PostMembers}} {
		a, _ := mailaddr.ParseList(spec.addr)
		reject := lists.ActionReject
		l, err := lists.Create(t.Context(), d, a, lists.Settings{PostPolicy: &spec.policy, NonMember: &reject}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		m, _ := members.ParseNew("member@example.org", "", "")
		members.Add(t.Context(), d, l.ID, []members.New{m})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := ingest.New(ingest.Options{DB: d, Logger: log, Hostname: "parley.test", MaxMessageBytes: 1 << 20})
	o := smtpin.Options{Intake: svc, Logger: log, Hostname: "parley.test", MaxMessageBytes: 1 << 20,
		MaxRecipients: 10, MaxLineLength: 4096, MaxConns: 50, MaxConnsPerIP: 20,
		CommandTimeout: 10 * time.Second, DataTimeout: 10 * time.Second}
	if change != nil {
		change(&o)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpin.New(o)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	return &rig{t: t, db: d, addr: ln.Addr().String()}
}

// client is a raw SMTP client: it writes exactly the bytes a test gives.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (r *rig) dial() *client {
	r.t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	cl := &client{t: r.t, c: c, br: bufio.NewReader(c)}
	cl.expect("220")
	return cl
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (c *client) reply() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return "EOF: " + err.Error()
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (c *client) expect(prefix string) string {
	c.t.Helper()
	got := c.reply()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("reply %q, want %q", got, prefix)
	}
	return got
}

func (c *client) send(s string) { c.c.Write([]byte(s)) }

func (c *client) cmd(line, want string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(want)
}

// envelope runs EHLO, MAIL and RCPTs up to DATA's 354.
func (c *client) envelope(from string, to ...string) {
	c.t.Helper()
	c.cmd("EHLO test.example", "250")
	c.cmd("MAIL FROM:<"+from+">", "250")
	for _, r := range to {
		c.cmd("RCPT TO:<"+r+">", "250")
	}
	c.cmd("DATA", "354")
}

func (r *rig) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.GetContext(r.t.Context(), &n, q, args...); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func TestRecipients(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	c := r.dial()
	c.cmd("EHLO test.example", "250")
	c.cmd("MAIL FROM:<x@example.org>", "250")
	tests := []struct{ rcpt, want string }{
		{"open@lists.example.org", "250"},
		{"open-request@lists.example.org", "250"},
		{"nosuch@lists.example.org", "550 5.1.1"},
		{"open+tag@lists.example.org", "550 5.1.1"},
		{"someone@elsewhere.example", "550 5.7.1"},
	}
	for _, tc := range tests {
		if got := c.cmd("RCPT TO:<"+tc.rcpt+">", ""); !strings.HasPrefix(got, tc.want) {
			t.Errorf("RCPT TO:<%s> = %q, want %q", tc.rcpt, got, tc.want)
		}
	}
	// Postfix's recipient probe: RCPT then RSET, no DATA, no side effects.
	c.cmd("RSET", "250")
	if n := r.count(`SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM inbound)`); n != 0 {
		t.Errorf("a probe left %d rows behind", n)
	}
}

// TestSmuggling sends each SMTP smuggling vector followed by what would be
// a second message; exactly one message may come out, containing both.
func TestSmuggling(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	for i, vec := range []string{"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n", "\n.\r"} {
		c := r.dial()
		c.envelope("x@example.org", "open@lists.example.org")
		id := fmt.Sprintf("smuggle%d@example.org", i)
		c.send("From: x@example.org\r\nMessage-ID: <" + id + ">\r\nSubject: v\r\n\r\nbefore" + vec +
			"MAIL FROM:<evil@example.org>\r\nRCPT TO:<open@lists.example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
		c.expect("250")
		c.cmd("QUIT", "221")
		if n := r.count(`SELECT count(*) FROM messages WHERE message_id = $1 AND position('MAIL FROM:<evil' in convert_from(raw, 'UTF8')) > 0`, id); n != 1 {
			t.Errorf("vector %q: the smuggled commands are not inside the one message", vec)
		}
	}
	if n := r.count(`SELECT count(*) FROM messages`); n != 6 {
		t.Errorf("%d messages archived, want exactly 6 (one per vector)", n)
	}
	var raws [][]byte
	if err := r.db.SelectContext(t.Context(), &raws, `SELECT raw FROM messages`); err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws {
		rest := bytes.ReplaceAll(raw, []byte("\r\n"), nil)
		if bytes.ContainsAny(rest, "\r\n") {
			t.Errorf("archived message keeps a bare CR or LF: %q", raw)
		}
	}
}

// TestDataEndsAfterCR: a message whose last line ends in a CR (old Mac
// line ends) or any mix of CR and LF before the final CRLF ends at
// CRLF "." CRLF and is answered at once; it used to be answered only by
// the DATA timeout (go-smtp's reader, patched in third_party/go-smtp).
func TestDataEndsAfterCR(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	for i, pre := range []string{"\r", "\r\r", "\n\r", "\r\n\r", "\n\r\r"} {
		c := r.dial()
		c.envelope("x@example.org", "open@lists.example.org")
		id := fmt.Sprintf("cr%d@example.org", i)
		c.send("From: x@example.org\r\nMessage-ID: <" + id + ">\r\nSubject: v\r\n\r\ntext" + pre + "\r\n.\r\n")
		c.expect("250")
		c.cmd("QUIT", "221")
		if n := r.count(`SELECT count(*) FROM messages WHERE message_id = $1`, id); n != 1 {
			t.Errorf("ending %q: %d archived, want 1", pre, n)
		}
	}
}

func TestDataReplies(t *testing.T) {
	t.Parallel()
	r := start(t, func(o *smtpin.Options) { o.MaxMessageBytes = 4096 })
	tests := []struct {
		name, from, to, body, want string
	}{
		{"member post", "member@example.org", "closed@lists.example.org", "From: member@example.org\r\nSubject: hi\r\n\r\nhello\r\n", "250"},
		{"non-member refused", "eve@example.net", "closed@lists.example.org", "From: eve@example.net\r\nSubject: hi\r\n\r\nhello\r\n", "550 5.7.1"},
		{"too big", "x@example.org", "open@lists.example.org", "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 400), "552 5.3.4"},
		{"bad header", "x@example.org", "open@lists.example.org", "Subject: ok\r\nthis is not a header\r\n\r\nbody\r\n", "554 5.6.0"},
		{"command mail stored", "x@example.org", "open-request@lists.example.org", "Subject: help\r\n\r\n", "250"},
	}
	for _, tc := range tests {
		c := r.dial()
		c.envelope(tc.from, tc.to)
		c.send(tc.body + ".\r\n")
		if got := c.reply(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: DATA reply %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := r.count(`SELECT count(*) FROM inbound WHERE kind = 'request'`); n != 1 {
		t.Errorf("%d -request messages stored, want 1", n)
	}
}

// TestDatabaseFailure: when the database fails mid-transaction the client
// gets 451 4.3.0, nothing is written, and the retry succeeds.
func TestDatabaseFailure(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	r.db.MustExec(`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$`)
	r.db.MustExec(`CREATE TRIGGER boom BEFORE INSERT ON outbound FOR EACH ROW EXECUTE FUNCTION boom()`)
	msg := "From: x@example.org\r\nMessage-ID: <retry@example.org>\r\n\r\nbody\r\n.\r\n"
	c := r.dial()
	c.envelope("x@example.org", "open@lists.example.org")
	c.send(msg)
	if got := c.reply(); !strings.HasPrefix(got, "451 4.3.0") || strings.Contains(got, "fire") {
		t.Errorf("DATA with a failing database = %q, want a generic 451 4.3.0", got)
	}
	if n := r.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("%d messages half-written", n)
	}
	r.db.MustExec(`DROP TRIGGER boom ON outbound`)
	c.cmd("MAIL FROM:<x@example.org>", "250")
	c.cmd("RCPT TO:<open@lists.example.org>", "250")
	c.cmd("DATA", "354")
	c.send(msg)
	c.expect("250")
	if n := r.count(`SELECT count(*) FROM messages WHERE article = 1`); n != 1 {
		t.Errorf("retry: %d messages with article 1", n)
	}
}

func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	r := start(t, func(o *smtpin.Options) { o.MaxConnsPerIP = 2 })
	r.dial()
	r.dial()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "421 4.7.0") {
		t.Errorf("third connection greeted with %q, want 421 4.7.0", line)
	}
}

// TestSlowSender: a sender slower than the DATA timeout gets a temporary
// failure, never a permanent one.
func TestSlowSender(t *testing.T) {
	t.Parallel()
	r := start(t, func(o *smtpin.Options) { o.DataTimeout = 300 * time.Millisecond })
	c := r.dial()
	c.envelope("x@example.org", "open@lists.example.org")
	c.send("Subject: slow\r\n\r\n")
	time.Sleep(600 * time.Millisecond)
	c.send("more\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "451 4.4.2") {
		t.Errorf("slow DATA = %q, want 451 4.4.2", got)
	}
}

func TestLongLine(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	c := r.dial()
	c.envelope("x@example.org", "open@lists.example.org")
	c.send("Subject: long\r\n\r\n" + strings.Repeat("x", 1<<20) + "\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "554 5.6.0") && !strings.HasPrefix(got, "552") {
		t.Errorf("1 MB line = %q, want 554 5.6.0 (or 552)", got)
	}
}

// TestLMTP: each recipient gets its own reply after DATA.
func TestLMTP(t *testing.T) {
	t.Parallel()
	r := start(t, func(o *smtpin.Options) { o.LMTP = true })
	c := r.dial()
	c.cmd("LHLO test.example", "250")
	c.cmd("MAIL FROM:<eve@example.net>", "250")
	c.cmd("RCPT TO:<open@lists.example.org>", "250")
	c.cmd("RCPT TO:<closed@lists.example.org>", "250")
	c.cmd("DATA", "354")
	c.send("From: eve@example.net\r\nSubject: lmtp\r\n\r\nbody\r\n.\r\n")
	first, second := c.reply(), c.reply()
	if !strings.HasPrefix(first, "250") || !strings.HasPrefix(second, "550 5.7.1") {
		t.Errorf("LMTP replies %q, %q; want 250 for open@, 550 5.7.1 for closed@", first, second)
	}
}

// TestStartTLS: with a certificate configured, STARTTLS is offered and a
// post sent over TLS is accepted.
func TestStartTLS(t *testing.T) {
	t.Parallel()
	r := start(t, func(o *smtpin.Options) { o.TLS = tlstest.SelfSigned(t) })
	c := r.dial()
	c.send("EHLO test.example\r\n")
	var ehlo []string
	for {
		line, _ := c.br.ReadString('\n')
		ehlo = append(ehlo, strings.TrimSpace(line))
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	if !slices.ContainsFunc(ehlo, func(l string) bool { return strings.HasSuffix(l, "STARTTLS") }) {
		t.Fatalf("EHLO does not offer STARTTLS: %q", ehlo)
	}
	cl, err := smtp.DialStartTLS(r.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "parley.test"})
	if err != nil {
		t.Fatalf("DialStartTLS: %v", err)
	}
	defer cl.Close()
	if _, ok := cl.TLSConnectionState(); !ok {
		t.Fatal("connection is not TLS after STARTTLS")
	}
	if err := cl.SendMail("x@example.org", []string{"open@lists.example.org"},
		strings.NewReader("From: x@example.org\r\nSubject: over tls\r\n\r\nsecret\r\n")); err != nil {
		t.Fatalf("post over TLS: %v", err)
	}
	if n := r.count(`SELECT count(*) FROM messages WHERE subject = 'over tls'`); n != 1 {
		t.Errorf("%d posts archived over TLS, want 1", n)
	}
}
