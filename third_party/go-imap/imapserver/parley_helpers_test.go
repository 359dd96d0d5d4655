package imapserver_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// rawConn is a client connection that speaks raw IMAP lines, for tests of
// exactly what the server writes.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// startRaw serves a memory server whose user "u" (password "p") has an
// INBOX with one message, wrapping each session with wrap (nil: as is), and
// returns a connection that has read the greeting.
func startRaw(t *testing.T, wrap func(imapserver.Session) imapserver.Session) *rawConn {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("u", "p")
	user.Create("INBOX", nil)
	msg := "From: a@example.org\r\nSubject: hello\r\nTo: b@example.org\r\n\r\nbody\r\n"
	if _, err := user.Append("INBOX", newLiteral(msg), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			var s imapserver.Session = mem.NewSession()
			if wrap != nil {
				s = wrap(s)
			}
			return s, nil, nil
		},
		InsecureAuth: true,
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapLiteralMinus: {}},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	r.line()
	return r
}

// line reads one line; a server that does not answer within two seconds
// fails the test.
func (r *rawConn) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("no answer from the server: %v (read %q)", err, l)
	}
	return l
}

// cmd sends tag and command and returns everything up to and including
// the tagged reply (literals included, as raw text).
func (r *rawConn) cmd(tag, command string) string {
	r.t.Helper()
	if _, err := r.c.Write([]byte(tag + " " + command + "\r\n")); err != nil {
		r.t.Fatal(err)
	}
	var all strings.Builder
	for {
		l := r.line()
		all.WriteString(l)
		if strings.HasPrefix(l, tag+" ") {
			return all.String()
		}
	}
}

type literal struct {
	*strings.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

func newLiteral(s string) imap.LiteralReader { return literal{strings.NewReader(s), int64(len(s))} }
