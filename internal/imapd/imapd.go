// Package imapd owns parley's read-only IMAP view of the archive: who may
// see which list, how a list's articles become a mailbox (UID = article
// number, UIDVALIDITY = the list's), and answering FETCH and SEARCH from
// the stored raw messages.
//
// The protocol itself is go-imap v2's imapserver; this package is the only
// one that imports it, so its beta gaps (docs/architecture.md lists them)
// are defended in one place: body structures are sanitised before they are written, every
// STATUS counter asked for is filled, new messages are announced one EXISTS
// at a time, and every write command is refused here, whatever the library
// would let through.
//
// It reads the archive's messages table directly, read-only: FETCH loads
// rows in the shape the request asks for (bytes or stored meta, within a
// byte budget), SEARCH compiles its criteria into one SQL condition on the
// archive's indexes, and year views count and list articles by date.
// Those queries are IMAP's, so they live here; lists and members are read
// through their owners.
package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/connlimit"
	"github.com/parley-list/parley/internal/notify"
)

// Options configure a Server.
type Options struct {
	DB  *sqlx.DB
	Log *slog.Logger
	// QueryTimeout bounds every database call a command makes.
	QueryTimeout time.Duration
	// DSN, when set, is used for a LISTEN connection that tells IDLE
	// sessions about new posts as soon as they are archived.
	DSN string
	// PollInterval is how often an IDLE session looks for new posts
	// without being told (0: 500 ms without DSN, 10 s with it).
	PollInterval time.Duration
	// FailedLoginDelay is how long a failed login waits for its answer
	// (0: 1 s).
	FailedLoginDelay time.Duration
	// MaxConns and MaxConnsPerIP bound concurrent connections (0: 1000, 20).
	MaxConns, MaxConnsPerIP int
	// TLS, when set, is offered as STARTTLS and used by ServeTLS; member
	// passwords are then only taken over TLS (or from loopback).
	TLS *tls.Config
	// Metrics, when set, are updated (register their Collectors).
	Metrics *Metrics
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Server serves the archive over IMAP.
type Server struct {
	o        Options
	srv      *imapserver.Server
	lim      *connlimit.Limiter
	auth     *connlimit.Failures
	hub      *hub
	listener *notify.Listener // nil without DSN
}

// New returns a Server; call Serve to accept connections.
func New(o Options) *Server {
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
		if o.DSN != "" {
			o.PollInterval = 10 * time.Second
		}
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 1000
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = 20
	}
	if o.FailedLoginDelay <= 0 {
		o.FailedLoginDelay = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics() // updated, never exported
	}
	s := &Server{o: o, auth: connlimit.NewFailures(o.FailedLoginDelay), hub: newHub()}
	// Both ports share the caps; every admitted connection coalesces its
	// writes (conn.go).
	s.lim = connlimit.New(connlimit.Options{Max: o.MaxConns, PerIP: o.MaxConnsPerIP, Log: o.Log,
		Refusal: []byte("* BYE [UNAVAILABLE] Too many connections, try again later\r\n"),
		Wrap:    func(c net.Conn) net.Conn { return newCoalescingConn(c) }})
	if o.DSN != "" {
		s.listener = s.hub.listen(o.DSN, o.DB, o.QueryTimeout, o.Log)
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {},
			imap.CapESearch:   {},
			imap.CapSearchRes: {},
			// LITERAL- (RFC 7888), not LITERAL+: a client may send up to
			// 4096 bytes without asking, so a large APPEND asks first and
			// can be refused before its data comes.
			imap.CapLiteralMinus: {},
			imap.CapBinary:       {},
			imap.CapChildren:     {},
		},
		Logger:    slogPrintf{o.Log},
		TLSConfig: o.TLS,
		// Anonymous reading of public archives needs no secret, so it is
		// allowed without TLS, as public-inbox and news servers do; Login
		// refuses a member's password on a plain connection when TLS is
		// configured.
		InsecureAuth: true,
	})
	return s
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(s.lim.Listen(ln))
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ServeTLS accepts implicit-TLS connections on ln (port 993) until Close.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.o.TLS == nil {
		return errors.New("imapd: ServeTLS without a TLS configuration")
	}
	err := s.srv.Serve(tls.NewListener(s.lim.Listen(ln), s.o.TLS))
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops accepting and closes every connection.
func (s *Server) Close() error {
	if s.listener != nil {
		s.listener.Close()
	}
	return s.srv.Close()
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ip, _, _ := net.SplitHostPort(c.NetConn().RemoteAddr().String())
	s.o.Metrics.Sessions.Inc()
	return &session{srv: s, conn: c, remote: ip, log: s.o.Log}, nil, nil
}

func (s *Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.o.QueryTimeout)
}

// slogPrintf adapts the library's Printf logger to slog.
type slogPrintf struct{ l *slog.Logger }

// A client that hangs up mid-command is routine, not a warning: the
// library reports it twice (the command, then the next read), so at
// debug level only. So is a client that fails the TLS handshake (a
// scanner, a plain-text client on the TLS port, a certificate it
// rejects): nothing an operator can act on.
func (p slogPrintf) Printf(format string, args ...any) {
	level := slog.LevelWarn
	for _, a := range args {
		if err, ok := a.(error); ok && (clientGone(err) || tlsFailed(err)) {
			level = slog.LevelDebug
		}
	}
	p.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "event", "imap_library")
}

func clientGone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded)
}

// tlsFailed reports a failed TLS handshake. crypto/tls wraps most of its
// errors in no exported type (a remote alert is a net.OpError around an
// unexported one), hence the match on its "tls: " prefix as well.
func tlsFailed(err error) bool {
	var rh tls.RecordHeaderError
	var alert tls.AlertError
	return errors.As(err, &rh) || errors.As(err, &alert) || strings.Contains(err.Error(), "tls: ")
}
