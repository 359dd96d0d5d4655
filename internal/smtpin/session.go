package smtpin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/parley-list/parley/internal/ingest"
)

// session is one SMTP session. go-smtp sessions have no context, so each
// gets its own, cancelled when the client goes away.
type session struct {
	srv    *Server
	conn   *smtp.Conn
	ctx    context.Context
	cancel context.CancelFunc
	remote string
	log    *slog.Logger

	from  string
	size  int64
	rcpts []ingest.Recipient
	given []string // RCPT TO arguments as sent, for LMTP replies
}

func (s *session) Reset() {
	s.from, s.size, s.rcpts, s.given = "", 0, nil, nil
}

func (s *session) Logout() error {
	s.cancel()
	return nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	if !plausibleSender(from) {
		s.log.Info("sender refused", "event", "sender_refused", "from", strconv.QuoteToASCII(from))
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Sender address is not valid"}
	}
	s.from = from
	if opts != nil {
		s.size = opts.Size
	}
	return nil
}

// withoutDetail hides the +detail of an address in the log: for a
// -confirm address it is a live confirmation code.
func withoutDetail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		at = len(addr)
	}
	if plus := strings.IndexByte(addr[:at], '+'); plus >= 0 {
		return addr[:plus] + "+…" + addr[at:]
	}
	return addr
}

// plausibleSender accepts the null sender and any address that is valid
// UTF-8 without control characters: replies and bounce handling may use
// it, so bytes no mail system could route are refused at the door.
// Otherwise envelope senders are taken as given (SRS, quoted local parts).
func plausibleSender(from string) bool {
	if !utf8.ValidString(from) {
		return false
	}
	for _, r := range from {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	r, err := s.srv.o.Intake.Resolve(s.ctx, to, s.size)
	if err != nil {
		if rej := (*ingest.Rejection)(nil); errors.As(err, &rej) { // a temporary failure is logged by reply
			s.log.Info("recipient refused", "event", "rcpt_refused", "rcpt", withoutDetail(to), "reason", rej.Msg)
		}
		return s.reply(err, "rcpt")
	}
	for _, have := range s.rcpts {
		if have.Address == r.Address {
			return nil // named twice: one copy
		}
	}
	s.rcpts = append(s.rcpts, r)
	s.given = append(s.given, to)
	return nil
}

// readData reads the whole message. The DATA transfer as a whole gets
// DataTimeout (go-smtp's read deadline covers only the command), and a
// sender that is too slow or drops the connection gets a temporary
// failure, never a permanent one.
func (s *session) readData(r io.Reader) ([]byte, error) {
	if nc := s.conn.Conn(); nc != nil {
		_ = nc.SetReadDeadline(time.Now().Add(s.srv.o.DataTimeout))
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	switch {
	case err == nil:
		return buf.Bytes(), nil
	case errors.Is(err, smtp.ErrDataTooLarge):
		return nil, &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: "message is larger than this server's limit of " + ingest.Size(s.srv.o.MaxMessageBytes)}
	case errors.Is(err, smtp.ErrTooLongLine):
		return nil, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: fmt.Sprintf("line longer than %d bytes", s.srv.o.MaxLineLength)}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.log.Info("DATA timed out", "event", "data_timeout")
		return nil, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "timeout reading message, try again"}
	}
	s.log.Info("DATA read failed", "event", "data_failed", "err", err)
	return nil, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "error reading message, try again"}
}

func (s *session) Data(r io.Reader) error {
	data, err := s.readData(r)
	if err != nil {
		return err
	}
	if len(s.rcpts) == 0 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "no valid recipients"}
	}
	env := ingest.Envelope{From: s.from, Rcpts: s.rcpts, Data: data, Source: s.srv.proto, Remote: s.remote}
	if err := s.srv.o.Intake.Accept(s.ctx, env); err != nil {
		return s.reply(err, "data")
	}
	return nil
}

// reply turns an intake error into the SMTP reply. Only a *Rejection is
// permanent; anything else (database down, deadline) is a temporary
// failure whose details stay in the log.
func (s *session) reply(err error, stage string) error {
	var rej *ingest.Rejection
	if errors.As(err, &rej) {
		return &smtp.SMTPError{Code: rej.Code, EnhancedCode: smtp.EnhancedCode(rej.Enhanced), Message: rej.Msg}
	}
	s.log.Error("temporary failure", "event", "intake_failed", "stage", stage, "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "server busy, try again later"}
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}
}

// lmtpSession gives each recipient its own reply, as LMTP requires: each
// is accepted in its own transaction, so one list's refusal does not touch
// another's delivery.
type lmtpSession struct {
	*session
}

func (l *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	data, err := l.readData(r)
	if err != nil {
		return err
	}
	for i, rc := range l.rcpts {
		env := ingest.Envelope{From: l.from, Rcpts: []ingest.Recipient{rc}, Data: data, Source: "lmtp", Remote: l.remote}
		var rerr error
		if err := l.srv.o.Intake.Accept(l.ctx, env); err != nil {
			rerr = l.reply(err, "data")
		}
		status.SetStatus(l.given[i], rerr)
	}
	return nil
}

func sprintf(format string, v ...any) string { return strings.TrimSpace(fmt.Sprintf(format, v...)) }
func sprint(v ...any) string                 { return strings.TrimSpace(fmt.Sprint(v...)) }
