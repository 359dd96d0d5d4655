// Package smtpsink is a test SMTP server on loopback that records every
// message it accepts, can refuse recipients on demand, and can misbehave
// the ways real relays do (4xx for a while, a connection dropped in the
// middle of DATA, a reply that never comes) for the fault-injection suite.
// It is the only place outbound mail goes in tests. Safe for concurrent use.
package smtpsink

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted transaction.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Sink is a running server.
type Sink struct {
	Addr string

	mu       sync.Mutex
	messages []Message
	// Refuse, when set, is asked for each RCPT; a non-nil *smtp.SMTPError
	// is the reply.
	refuse func(rcpt string) *smtp.SMTPError
	// user and pass, when set, are required through AUTH PLAIN.
	user, pass string
	maxRcpts   int
	fault      Fault
	// keep, when set, sees each accepted message; false means it is not
	// kept (a long run counts copies instead of holding them all).
	keep func(Message) bool
	srv  *smtp.Server
}

// Fault is a way the sink misbehaves.
type Fault int

const (
	// Healthy accepts mail.
	Healthy Fault = iota
	// TempFail answers 451 to every MAIL FROM.
	TempFail
	// DropInData reads part of the message and closes the connection.
	DropInData
	// Hang reads the whole message and answers nothing until the fault
	// ends, then closes the connection: the message is not accepted.
	Hang
)

func (f Fault) String() string {
	return [...]string{"healthy", "tempfail", "drop-in-data", "hang"}[f]
}

// SetFault makes the sink misbehave (Healthy ends it).
func (s *Sink) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

func (s *Sink) currentFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// Keep installs the filter deciding which accepted messages are kept for
// Messages (nil keeps all).
func (s *Sink) Keep(f func(Message) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = f
}

// LimitRcpts answers 452 to recipients past n in one transaction.
func (s *Sink) LimitRcpts(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxRcpts = n
}

// RequireAuth makes the sink demand AUTH PLAIN with these credentials.
func (s *Sink) RequireAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

// Start runs a sink until the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	s := &Sink{}
	if err := s.listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		srv.Close()
	})
	return s
}

// listen serves on addr (port 0: a free one, recorded in Addr).
func (s *Sink) listen(addr string) error {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, conn: c}, nil }))
	srv.Domain = "sink.test"
	srv.MaxLineLength = 0
	srv.AllowInsecureAuth = true // loopback only
	// Clients that hang up (a killed parley) are expected, not news.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.Addr, s.srv = ln.Addr().String(), srv
	s.mu.Unlock()
	go srv.Serve(ln)
	return nil
}

// Restart stops the server, closing every connection (idle ones in a
// client's pool included), and serves again on the same address, as a
// relay does when it is reloaded or fails over.
func (s *Sink) Restart() error {
	s.mu.Lock()
	srv, addr := s.srv, s.Addr
	s.mu.Unlock()
	srv.Close()
	return s.listen(addr)
}

// SetRefuse installs the RCPT policy (nil accepts everything).
func (s *Sink) SetRefuse(f func(rcpt string) *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = f
}

// Messages returns a copy of what was accepted so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

type session struct {
	s      *Sink
	conn   *smtp.Conn
	from   string
	to     []string
	authed bool
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		x.s.mu.Lock()
		defer x.s.mu.Unlock()
		if user != x.s.user || pass != x.s.pass {
			return smtp.ErrAuthFailed
		}
		x.authed = true
		return nil
	}), nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.s.mu.Lock()
	need := x.s.user != ""
	x.s.mu.Unlock()
	if need && !x.authed {
		return smtp.ErrAuthRequired
	}
	if x.s.currentFault() == TempFail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	f, limit := x.s.refuse, x.s.maxRcpts
	x.s.mu.Unlock()
	if limit > 0 && len(x.to) >= limit {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "too many recipients"}
	}
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	if x.s.currentFault() == DropInData {
		io.CopyN(io.Discard, r, 512)
		x.conn.Conn().Close()
		return errors.New("connection dropped in DATA")
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return err
	}
	if x.s.currentFault() == Hang {
		for x.s.currentFault() == Hang {
			time.Sleep(20 * time.Millisecond)
		}
		x.conn.Conn().Close()
		return errors.New("hung up without a reply")
	}
	m := Message{From: x.from, To: append([]string(nil), x.to...), Data: b.Bytes()}
	x.s.mu.Lock()
	keep := x.s.keep
	x.s.mu.Unlock()
	if keep != nil && !keep(m) {
		return nil
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.messages = append(x.s.messages, m)
	return nil
}
