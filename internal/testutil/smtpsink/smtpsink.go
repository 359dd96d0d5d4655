// Package smtpsink is a test SMTP server on loopback that records every
// message it accepts and can refuse recipients on demand. It is the only
// place outbound mail goes in tests. Safe for concurrent use.
package smtpsink

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

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
}

// Start runs a sink until the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	s := &Sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "sink.test"
	srv.MaxLineLength = 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
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
	s    *Sink
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	f := x.s.refuse
	x.s.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.messages = append(x.s.messages, Message{From: x.from, To: append([]string(nil), x.to...), Data: b.Bytes()})
	return nil
}
