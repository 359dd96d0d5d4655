package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"time"
)

// SendPipelined runs one mail transaction for a message already in CRLF
// lines. When the server offers PIPELINING (RFC 2920), MAIL, every RCPT
// and DATA go in one write and the message with its final dot in
// another: two round trips whatever the number of recipients, where
// Mail, Rcpt and Data take one each. Without PIPELINING the commands go
// one at a time. The message is dot-stuffed here, a line at a time.
//
// rcptErrs holds each recipient's refusal in order (nil: accepted); it
// is nil when the transaction failed before any recipient's answer (MAIL
// refused, or the connection failed), so nothing was taken. err is the
// transaction's failure: MAIL's refusal, DATA's, the message's, or the
// connection's. When every recipient is refused, no message is sent and
// err is nil. Errors from the server are *SMTPError.
func (c *Client) SendPipelined(from string, opts *MailOptions, rcpts []string, msg []byte) (rcptErrs []error, err error) {
	if c.lmtp {
		return nil, errors.New("smtp: SendPipelined does not speak LMTP")
	}
	if err := c.hello(); err != nil {
		return nil, err
	}
	cmds := make([]string, 0, len(rcpts)+2)
	mail, err := c.mailCommand(from, opts)
	if err != nil {
		return nil, err
	}
	cmds = append(cmds, mail)
	for _, to := range rcpts {
		rcpt, err := c.rcptCommand(to, nil)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, rcpt)
	}
	cmds = append(cmds, "DATA")
	c.conn.SetDeadline(time.Now().Add(c.CommandTimeout))
	defer c.conn.SetDeadline(time.Time{})
	if _, pipelining := c.ext["PIPELINING"]; !pipelining {
		return c.sendOneByOne(cmds, rcpts, msg)
	}
	for _, cmd := range cmds {
		c.text.W.WriteString(cmd)
		c.text.W.WriteString("\r\n")
	}
	if err := c.text.W.Flush(); err != nil {
		return nil, err
	}
	// Every answer is read, in order, whatever the first ones say.
	_, _, mailErr := c.readResponse(250)
	if mailErr != nil && !isSMTPError(mailErr) {
		return nil, mailErr
	}
	rcptErrs = make([]error, len(rcpts))
	accepted := 0
	c.rcpts = nil
	for i := range rcpts {
		if _, _, err := c.readResponse(25); err != nil {
			if !isSMTPError(err) {
				return nil, err
			}
			rcptErrs[i] = err
			continue
		}
		accepted++
		c.rcpts = append(c.rcpts, rcpts[i])
	}
	_, _, dataErr := c.readResponse(354)
	switch {
	case mailErr != nil:
		if dataErr == nil {
			c.endData(nil) // a server that took DATA after refusing MAIL: send nothing
		}
		return nil, mailErr
	case dataErr != nil && accepted == 0:
		return rcptErrs, nil
	case dataErr != nil:
		return rcptErrs, dataErr
	case accepted == 0:
		return rcptErrs, c.endData(nil) // RFC 2920 §3.1: 354 with no recipient, end at once
	}
	return rcptErrs, c.endData(msg)
}

// sendOneByOne is SendPipelined for a server without PIPELINING.
func (c *Client) sendOneByOne(cmds, rcpts []string, msg []byte) ([]error, error) {
	if _, _, err := c.cmd(250, "%s", cmds[0]); err != nil {
		return nil, err
	}
	rcptErrs := make([]error, len(rcpts))
	accepted := 0
	c.rcpts = nil
	for i := range rcpts {
		if _, _, err := c.cmd(25, "%s", cmds[i+1]); err != nil {
			if !isSMTPError(err) {
				return nil, err
			}
			rcptErrs[i] = err
			continue
		}
		accepted++
		c.rcpts = append(c.rcpts, rcpts[i])
	}
	if accepted == 0 {
		return rcptErrs, nil
	}
	if _, _, err := c.cmd(354, "DATA"); err != nil {
		return rcptErrs, err
	}
	return rcptErrs, c.endData(msg)
}

// endData writes the message dot-stuffed, then the final dot, and reads
// the answer.
func (c *Client) endData(msg []byte) error {
	c.conn.SetDeadline(time.Now().Add(c.SubmissionTimeout))
	writeDotted(c.text.W, msg)
	c.text.W.WriteString(".\r\n")
	if err := c.text.W.Flush(); err != nil {
		return err
	}
	_, _, err := c.readResponse(250)
	return err
}

// writeDotted writes msg with a dot added before each line that starts
// with one, bare LFs made CRLF, and a CRLF at the end when it lacks one.
func writeDotted(w *bufio.Writer, msg []byte) {
	for len(msg) > 0 {
		if msg[0] == '.' {
			w.WriteByte('.')
		}
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			w.Write(msg)
			w.WriteString("\r\n")
			return
		}
		if i > 0 && msg[i-1] == '\r' {
			w.Write(msg[:i+1])
		} else {
			w.Write(msg[:i])
			w.WriteString("\r\n")
		}
		msg = msg[i+1:]
	}
}

func isSMTPError(err error) bool {
	var se *SMTPError
	return errors.As(err, &se)
}
