package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Relay sends one copy to one recipient. A *Permanent error means the
// recipient will never take it; any other error is temporary.
type Relay interface {
	Send(ctx context.Context, from, rcpt string, msg []byte) error
	Close() error
}

// Permanent is a refusal that retrying will not change (an SMTP 5xx).
type Permanent struct {
	Code int
	Msg  string
}

func (p *Permanent) Error() string { return fmt.Sprintf("%d %s", p.Code, p.Msg) }

// smtpErr classifies an error from the SMTP client: 5xx replies are
// permanent, everything else (4xx, network, timeouts) temporary.
func smtpErr(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		return &Permanent{Code: se.Code, Msg: se.Message}
	}
	return err
}

// FileRelay writes each copy as a file in Dir, named so that a directory
// listing is in delivery order, with the envelope recorded in a
// Return-Path and a Delivered-To field at the top, as a local delivery
// agent would. It is the development default: what members would get is
// there to read.
type FileRelay struct {
	Dir string
	seq atomic.Uint64
}

// Send writes the copy atomically (temporary name, then rename).
func (f *FileRelay) Send(_ context.Context, from, rcpt string, msg []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", from, rcpt)
	b.Write(msg)
	name := fmt.Sprintf("%d-%06d.eml", time.Now().UnixNano(), f.seq.Add(1)%1000000)
	tmp := filepath.Join(f.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(f.Dir, name))
}

// Close does nothing.
func (f *FileRelay) Close() error { return nil }

// SMTPRelay sends through a smarthost, one transaction per copy (each copy
// has its own VERP return path), over a small pool of reused connections.
// STARTTLS is used when the smarthost offers it.
type SMTPRelay struct {
	Addr     string
	Hostname string // our EHLO name
	TLS      *tls.Config
	Timeout  time.Duration
	// Username and Password, when set, log in with AUTH PLAIN (after
	// STARTTLS when the relay offers it).
	Username, Password string
	// Conns is how many connections are kept open between copies
	// (default 16). Set it to the copies sent at once: with fewer, each
	// copy past them pays a new connection (and TLS and AUTH).
	Conns int

	mu   sync.Mutex
	idle []*smtp.Client
}

// PerDomainLimit reports whether per-destination-domain caps apply: not
// for a smarthost, which is one destination whatever the recipients.
func (r *SMTPRelay) PerDomainLimit() bool { return false }

// PerDomainLimit: not for files.
func (f *FileRelay) PerDomainLimit() bool { return false }

// defaultConns is SMTPRelay.Conns when it is not set.
const defaultConns = 16

// conn returns an idle pooled connection (reused true) or a new one.
func (r *SMTPRelay) conn(ctx context.Context) (c *smtp.Client, reused bool, err error) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		c := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return c, true, nil // released only after a completed or reset transaction
	}
	r.mu.Unlock()
	c, err = r.dial(ctx)
	return c, false, err
}

// dial opens a new session: EHLO, STARTTLS when offered, AUTH when set.
func (r *SMTPRelay) dial(ctx context.Context) (*smtp.Client, error) {
	d := net.Dialer{Timeout: r.Timeout}
	nc, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(nc)
	c.CommandTimeout, c.SubmissionTimeout = r.Timeout, r.Timeout
	if err := c.Hello(r.Hostname); err != nil {
		c.Close()
		return nil, err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && r.TLS != nil {
		c.Close()
		nc, err = d.DialContext(ctx, "tcp", r.Addr)
		if err != nil {
			return nil, err
		}
		if c, err = smtp.NewClientStartTLS(nc, r.TLS); err != nil {
			return nil, err
		}
		c.CommandTimeout, c.SubmissionTimeout = r.Timeout, r.Timeout
		if err := c.Hello(r.Hostname); err != nil {
			c.Close()
			return nil, err
		}
	}
	if r.Username != "" {
		// The password never crosses a network in clear: without TLS
		// (not offered, or stripped by an attacker) only a smarthost on
		// this machine gets it.
		if _, tlsOn := c.TLSConnectionState(); !tlsOn && !isLoopback(r.Addr) {
			c.Close()
			return nil, errors.New("smarthost offers no STARTTLS; not sending the password in clear")
		}
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (r *SMTPRelay) release(c *smtp.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.Conns
	if keep <= 0 {
		keep = defaultConns
	}
	if len(r.idle) < keep {
		r.idle = append(r.idle, c)
		return
	}
	c.Close()
}

// staleErr marks a pooled connection that failed before the relay took
// MAIL FROM: the relay closed it while it sat idle (restarted, reloaded,
// timed it out), so nothing of the transaction reached it and it is
// tried again at once on a fresh connection, as Postfix's connection
// cache does, instead of being deferred to the retry schedule.
type staleErr struct{ err error }

func (e *staleErr) Error() string { return "pooled connection closed by the relay: " + e.err.Error() }
func (e *staleErr) Unwrap() error { return e.err }

// closedByRelay tells a stale pooled connection apart: one the relay
// closed (EOF, reset, broken pipe) or is closing (421). A timeout is not
// stale: a relay that hangs would hang the new connection too.
func closedByRelay(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code == 421
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Send runs one transaction. A connection that failed is dropped; one
// whose transaction was refused is reused. A pooled connection the relay
// had closed is replaced at once.
func (r *SMTPRelay) Send(ctx context.Context, from, rcpt string, msg []byte) error {
	c, reused, err := r.conn(ctx)
	if err != nil {
		return err
	}
	err = transaction(c, reused, from, rcpt, msg)
	var stale *staleErr
	if errors.As(err, &stale) {
		c.Close()
		if c, err = r.dial(ctx); err != nil {
			return err
		}
		err = transaction(c, false, from, rcpt, msg)
	}
	var se *smtp.SMTPError
	switch {
	case err == nil:
		r.release(c)
	case errors.As(err, &se) && c.Reset() == nil:
		r.release(c) // refused, but the session is fine for the next copy
	default:
		c.Close()
	}
	return smtpErr(err)
}

// transaction sends one copy to one recipient: MAIL, RCPT and DATA in
// one write when the relay offers PIPELINING, the message in another.
func transaction(c *smtp.Client, reused bool, from, rcpt string, msg []byte) error {
	rcptErrs, err := c.SendPipelined(from, &smtp.MailOptions{Size: int64(len(msg))}, []string{rcpt}, msg)
	if rcptErrs == nil && err != nil && reused && closedByRelay(err) {
		return &staleErr{err} // nothing of it was taken
	}
	if err == nil && rcptErrs[0] != nil {
		return rcptErrs[0]
	}
	return err
}

// Close closes the idle connections.
func (r *SMTPRelay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.idle {
		c.Quit()
		c.Close()
	}
	r.idle = nil
	return nil
}

// codeOf returns the SMTP code behind an error, 0 when there is none.
func codeOf(err error) int {
	var p *Permanent
	if errors.As(err, &p) {
		return p.Code
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// BatchRelay sends one message to many recipients at one domain in as few
// SMTP transactions as the server allows (VERP off), with a result per
// recipient: a refused RCPT fails or defers that recipient only, and a 452
// "too many recipients" moves the rest to a new transaction.
type BatchRelay interface {
	SendBatch(ctx context.Context, from string, rcpts []string, msg []byte) []error
}

// SendBatch writes one file per recipient.
func (f *FileRelay) SendBatch(ctx context.Context, from string, rcpts []string, msg []byte) []error {
	errs := make([]error, len(rcpts))
	for i, r := range rcpts {
		errs[i] = f.Send(ctx, from, r, msg)
	}
	return errs
}

// SendBatch runs as many transactions as the relay's recipient limit needs.
func (r *SMTPRelay) SendBatch(ctx context.Context, from string, rcpts []string, msg []byte) []error {
	errs := make([]error, len(rcpts))
	rest := make([]int, len(rcpts))
	for i := range rest {
		rest[i] = i
	}
	for len(rest) > 0 {
		c, reused, err := r.conn(ctx)
		var next []int
		if err == nil {
			next, err = batchTransaction(c, reused, from, rcpts, rest, msg, errs)
			var stale *staleErr
			if errors.As(err, &stale) { // nothing was sent: once more on a fresh connection
				c.Close()
				c, err = r.dial(ctx)
				if err == nil {
					next, err = batchTransaction(c, false, from, rcpts, rest, msg, errs)
				}
			}
		}
		if err != nil && c == nil { // no connection at all
			next = rest
		}
		if rest, err = r.afterBatch(c, err, rest, next, errs); err != nil {
			return errs
		}
	}
	return errs
}

// afterBatch files one batch transaction's outcome: the connection is
// reused or dropped, and when nothing more can be done the recipients not
// yet decided get the error. It returns the recipients left for another
// transaction, and an error when there is to be none.
func (r *SMTPRelay) afterBatch(c *smtp.Client, err error, rest, next []int, errs []error) ([]int, error) {
	if c != nil {
		var se *smtp.SMTPError
		switch {
		case err == nil:
			r.release(c)
		case errors.As(err, &se) && c.Reset() == nil:
			r.release(c)
		default:
			c.Close()
		}
	}
	if err != nil || len(next) == len(rest) {
		if err == nil {
			err = errors.New("relay accepted no recipient")
		}
		for _, i := range next {
			if errs[i] == nil {
				errs[i] = smtpErr(err)
			}
		}
		return nil, err
	}
	return next, nil
}

// batchTransaction runs one transaction for the recipients rest (indices
// into rcpts), recording each one's result in errs, and returns the
// recipients deferred by a 452 for the next transaction.
func batchTransaction(c *smtp.Client, reused bool, from string, rcpts []string, rest []int, msg []byte, errs []error) ([]int, error) {
	to := make([]string, len(rest))
	for k, i := range rest {
		to[k] = rcpts[i]
	}
	rcptErrs, err := c.SendPipelined(from, &smtp.MailOptions{Size: int64(len(msg))}, to, msg)
	if rcptErrs == nil {
		if err != nil && reused && closedByRelay(err) {
			return rest, &staleErr{err}
		}
		return rest, err
	}
	// A 452 ("too many recipients") defers a recipient to the next
	// transaction, when this one took some.
	var accepted, deferred []int
	for k, i := range rest {
		var se *smtp.SMTPError
		switch e := rcptErrs[k]; {
		case e == nil:
			accepted = append(accepted, i)
		case errors.As(e, &se) && se.Code == 452:
			deferred = append(deferred, i)
		default:
			errs[i] = smtpErr(e)
		}
	}
	if len(accepted) == 0 { // nothing to defer to: each keeps its refusal
		for k, i := range rest {
			if errs[i] == nil {
				errs[i] = smtpErr(rcptErrs[k])
			}
		}
		return nil, err
	}
	for _, i := range accepted {
		errs[i] = smtpErr(err)
	}
	// A failed DATA leaves the session in an unknown state: the caller
	// resets or drops the connection; the deferred recipients stay
	// deferred and get the error only if no transaction follows.
	return deferred, err
}

// SendBatch tries the domain's exchangers in order; recipients refused
// temporarily (or not reached) by one exchanger are tried at the next.
func (r *MXRelay) SendBatch(ctx context.Context, from string, rcpts []string, msg []byte) []error {
	errs := make([]error, len(rcpts))
	if len(rcpts) == 0 {
		return errs
	}
	at := strings.LastIndexByte(rcpts[0], '@')
	hosts, err := r.exchangers(ctx, strings.ToLower(rcpts[0][at+1:]))
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	pending := make([]int, len(rcpts))
	for i := range pending {
		pending[i] = i
	}
	for _, h := range hosts {
		sub := make([]string, len(pending))
		for k, i := range pending {
			sub[k] = rcpts[i]
		}
		res := r.relayFor(h).SendBatch(ctx, from, sub, msg)
		var again []int
		for k, i := range pending {
			errs[i] = res[k]
			var perm *Permanent
			if res[k] != nil && !errors.As(res[k], &perm) {
				again = append(again, i)
			}
		}
		if pending = again; len(pending) == 0 {
			break
		}
	}
	return errs
}
