// Package nntpd owns parley's NNTP side (RFC 3977): every list is a
// newsgroup, read from the same archive as IMAP and the web, with the
// archive's article numbers (IMAP's UIDs) as its article numbers.
//
// No Go NNTP server library is kept up (the few there are stopped years
// ago and cover a fraction of RFC 3977), so the protocol is written here:
// a line reader with a hard length limit, one goroutine per connection,
// a deadline on every read and write, and answers from PostgreSQL through
// internal/archive's reads. OVER streams from stored fields, so an
// overview of 100,000 articles parses no message.
//
// A private list is a group only for a session that logged in (AUTHINFO
// USER/PASS, RFC 4643) as one of its members with their archive
// password, over TLS or from the same machine; to anyone else it answers
// exactly as a group that does not exist.
package nntpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/connlimit"
)

// Options configure the server.
type Options struct {
	DB       *sqlx.DB
	Log      *slog.Logger
	Hostname string // in Path:, Xref: and the greeting
	// MaxConns and MaxConnsPerIP cap connections (0: no cap).
	MaxConns, MaxConnsPerIP int
	// IdleTimeout ends a session that sends nothing (default 10 min, the
	// RFC's minimum is 3).
	IdleTimeout time.Duration
	// QueryTimeout bounds each command's reads (default 30s).
	QueryTimeout time.Duration
	// FailedLoginDelay is how long a failed AUTHINFO waits (default 1s).
	FailedLoginDelay time.Duration
	Now              func() time.Time
	// Intake takes posted articles; nil: posting is not allowed.
	Intake Intake
	// TLS, when set, is offered as STARTTLS (RFC 4642) and used by
	// ServeTLS (nntps).
	TLS *tls.Config
	// MaxArticle bounds a posted article (the server's message limit;
	// a list's own smaller limit is the intake's to apply).
	MaxArticle int64
}

// Server serves NNTP.
type Server struct {
	o     Options
	limit *connlimit.Limiter
	auth  *connlimit.Failures

	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a Server.
func New(o Options) *Server {
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.FailedLoginDelay == 0 {
		o.FailedLoginDelay = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxArticle == 0 {
		o.MaxArticle = 25 << 20
	}
	return &Server{o: o, conns: map[net.Conn]struct{}{}, auth: connlimit.NewFailures(o.FailedLoginDelay),
		limit: connlimit.New(connlimit.Options{Max: o.MaxConns, PerIP: o.MaxConnsPerIP, Log: o.Log,
			Refusal: []byte("400 too many connections, try again later\r\n")})}
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts connections on ln that begin with TLS (nntps, port
// 563) until Close.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.o.TLS == nil {
		return errors.New("nntps: no TLS certificate")
	}
	return s.serve(tls.NewListener(ln, s.o.TLS), true)
}

func (s *Server) serve(ln net.Listener, isTLS bool) error {
	ln = s.limit.Listen(ln)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.session(c, isTLS)
		}()
	}
}

// Close stops the listeners, ends every session and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// maxLine is the longest command line read (RFC 3977 allows 512 octets;
// a little room for clients that send more).
const maxLine = 2048

// errLineTooLong says a command line passed maxLine.
var errLineTooLong = errors.New("line too long")

// readLine reads one CRLF (or LF) line of at most maxLine bytes; a
// longer one is read to its end and refused.
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return string(line), nil
			}
			return "", err
		}
		if len(line)+len(chunk) > maxLine {
			for isPrefix {
				if _, isPrefix, err = r.ReadLine(); err != nil {
					return "", err
				}
			}
			return "", errLineTooLong
		}
		line = append(line, chunk...)
		if !isPrefix {
			return string(line), nil
		}
	}
}

// ctx bounds one command's reads.
func (s *Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.o.QueryTimeout)
}
