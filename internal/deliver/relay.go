package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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

	mu   sync.Mutex
	idle []*smtp.Client
}

// PerDomainLimit reports whether per-destination-domain caps apply: not
// for a smarthost, which is one destination whatever the recipients.
func (r *SMTPRelay) PerDomainLimit() bool { return false }

// PerDomainLimit: not for files.
func (f *FileRelay) PerDomainLimit() bool { return false }

const maxIdle = 16

func (r *SMTPRelay) conn(ctx context.Context) (*smtp.Client, error) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		c := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return c, nil // released only after a completed or reset transaction
	} else {
		r.mu.Unlock()
	}
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
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (r *SMTPRelay) release(c *smtp.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.idle) < maxIdle {
		r.idle = append(r.idle, c)
		return
	}
	c.Close()
}

// Send runs one transaction. A connection that failed is dropped; one
// whose transaction was refused is reused.
func (r *SMTPRelay) Send(ctx context.Context, from, rcpt string, msg []byte) error {
	c, err := r.conn(ctx)
	if err != nil {
		return err
	}
	err = transaction(c, from, rcpt, msg)
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

func transaction(c *smtp.Client, from, rcpt string, msg []byte) error {
	if err := c.Mail(from, &smtp.MailOptions{Size: int64(len(msg))}); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	return w.Close()
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
