package faults

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// attempt is the result of one SMTP transaction.
type attempt int

const (
	attemptNotSent  attempt = iota // failed before the final dot
	attemptRefused                 // a 4xx/5xx to the final dot
	attemptUnknown                 // the connection broke waiting for that reply
	attemptAccepted                // 250
	attemptAborted                 // we walked away in the middle of DATA
)

// sendOnce runs one transaction against addr. With abort set it writes
// part of the message and drops the connection.
func sendOnce(addr, from, rcpt string, data []byte, abort bool) attempt {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return attemptNotSent
	}
	defer conn.Close()
	c := smtp.NewClient(conn)
	c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, 30*time.Second
	if err := c.Hello("client.faults.test"); err != nil {
		return attemptNotSent
	}
	if err := c.Mail(from, nil); err != nil {
		return attemptNotSent
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return attemptNotSent
	}
	w, err := c.Data()
	if err != nil {
		return attemptNotSent
	}
	if abort {
		w.Write(data[:len(data)/2])
		conn.Close()
		return attemptAborted
	}
	if _, err := w.Write(data); err != nil {
		return attemptNotSent
	}
	err = w.Close()
	var se *smtp.SMTPError
	switch {
	case err == nil:
		c.Quit()
		return attemptAccepted
	case errors.As(err, &se):
		return attemptRefused
	default:
		return attemptUnknown
	}
}

// deliver sends m the way a patient MTA does: it tries again (at either
// parley) until an attempt is accepted, after a refusal only sometimes,
// and gives up after two minutes. It does not stop when the workload
// does, so a post is not left unknown when the faults stop.
func deliver(addrs []string, m *mail, from, rcpt string, data []byte, abort bool, rng *rand.Rand) {
	sawRefused, sawUnknown := false, false
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		switch sendOnce(addrs[rng.IntN(len(addrs))], from, rcpt, data, abort) {
		case attemptAccepted:
			m.outcome = accepted
			return
		case attemptAborted:
			m.outcome = aborted
			return
		case attemptRefused:
			sawRefused = true
			if rng.IntN(2) == 0 && !sawUnknown {
				m.outcome = refused
				return
			}
		case attemptUnknown:
			sawUnknown = true
		}
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
	}
	switch {
	case sawUnknown:
		m.outcome = unknown
	case sawRefused:
		m.outcome = refused
	default:
		m.outcome = notSent
	}
}

// message builds a post's bytes: fixed for a given mail, so a retry is
// the same message (parley's idempotent intake must make it one article).
func message(m *mail, to, inReplyTo string, rng *rand.Rand) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: fault test %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		m.from, to, m.messageID, time.Now().Format(time.RFC1123Z), m.messageID)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, inReplyTo)
	}
	b.WriteString("\r\n")
	for range 10 + rng.IntN(40) {
		fmt.Fprintf(&b, "line %d of a post that must never be lost, whatever crashes.\r\n", rng.IntN(1e6))
	}
	return b.Bytes()
}

// dsn builds a delivery status notification saying rcpt does not exist.
func dsn(id, to, rcpt string) []byte {
	return fmt.Appendf(nil, "From: MAILER-DAEMON@mx.members.example\r\nTo: %s\r\n"+
		"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <%s>\r\nDate: %s\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"+
		"--B\r\nContent-Type: text/plain\r\n\r\nThe message could not be delivered.\r\n"+
		"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.members.example\r\n\r\n"+
		"Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n"+
		"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--B--\r\n",
		to, id, time.Now().Format(time.RFC1123Z), rcpt)
}
