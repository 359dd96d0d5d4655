// Package smtpin owns parley's SMTP and LMTP listeners: the protocol side
// of intake, on go-smtp. It enforces the transport limits (connections,
// sizes, timeouts), classifies each recipient as it is named, and turns
// every outcome into the right reply code.
//
// go-smtp matches backend errors with a plain type assertion on
// *smtp.SMTPError and answers any other error from DATA with a permanent
// 554, so every path here returns an *smtp.SMTPError built by reply():
// permanent refusals (*ingest.Rejection) keep their code, everything else
// becomes 451 4.3.0 with a generic text, and the cause is logged.
package smtpin

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/parley-list/parley/internal/connlimit"
	"github.com/parley-list/parley/internal/ingest"
)

// Intake is what the SMTP side needs from the rest of parley.
type Intake interface {
	Resolve(ctx context.Context, rcpt string, size int64) (ingest.Recipient, error)
	Accept(ctx context.Context, env ingest.Envelope) error
}

// Options configure a Server.
type Options struct {
	Intake          Intake
	Logger          *slog.Logger
	Hostname        string
	MaxMessageBytes int64
	MaxRecipients   int
	MaxLineLength   int
	MaxConns        int
	MaxConnsPerIP   int
	CommandTimeout  time.Duration
	DataTimeout     time.Duration
	TLS             *tls.Config // nil: no STARTTLS
	LMTP            bool
}

// Server is one SMTP or LMTP listener.
type Server struct {
	o     Options
	smtp  *smtp.Server
	log   *slog.Logger
	proto string
}

// New returns a server; call Serve with a listener.
func New(o Options) *Server {
	s := &Server{o: o, proto: "smtp"}
	if o.LMTP {
		s.proto = "lmtp"
	}
	s.log = o.Logger.With("proto", s.proto)
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = o.Hostname
	srv.LMTP = o.LMTP
	srv.MaxMessageBytes = o.MaxMessageBytes
	srv.MaxRecipients = o.MaxRecipients
	srv.MaxLineLength = o.MaxLineLength
	srv.ReadTimeout = o.CommandTimeout
	srv.WriteTimeout = o.CommandTimeout
	srv.EnableSMTPUTF8 = true
	srv.TLSConfig = o.TLS
	srv.ErrorLog = slogAdapter{s.log}
	s.smtp = srv
	return s
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	lim := connlimit.New(connlimit.Options{Max: s.o.MaxConns, PerIP: s.o.MaxConnsPerIP, Log: s.log,
		Refusal: []byte("421 4.7.0 too many connections, try again later\r\n")})
	err := s.smtp.Serve(lim.Listen(ln))
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for open sessions to finish (a
// transaction in DATA completes and gets its reply) until ctx ends, then
// closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.smtp.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return s.smtp.Close()
	}
	return err
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	remote := ""
	if c.Conn() != nil {
		remote = c.Conn().RemoteAddr().String()
	}
	sess := &session{srv: s, conn: c, ctx: ctx, cancel: cancel, remote: remote,
		log: s.log.With("remote", remote, "helo", c.Hostname())}
	if s.o.LMTP {
		return &lmtpSession{session: sess}, nil
	}
	return sess, nil
}

// slogAdapter gives go-smtp's internal error log a home in slog. What it
// reports is almost always a client going away (debug); a recovered panic
// in a session is a bug of ours and is logged as an error.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.emit(sprintf(format, v...)) }

func (a slogAdapter) Println(v ...any) { a.emit(sprint(v...)) }

func (a slogAdapter) emit(detail string) {
	if strings.Contains(detail, "panic") {
		a.log.Error("smtp server panic", "event", "smtp_panic", "detail", detail)
		return
	}
	a.log.Debug("smtp server", "event", "smtp_error", "detail", detail)
}
