// Package notice owns the messages parley writes itself (to moderators,
// to members, to senders): rendering them safely and queueing them for
// delivery.
package notice

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/outqueue"
)

// Message is a notice to send.
type Message struct {
	From, To, Subject, Text string
	Attach                  []byte // a message to attach as message/rfc822, or nil
	ReplyTo                 string // optional
	AutoReplied             bool   // an answer to a message (RFC 3834 auto-replied, not auto-generated)
	Loop                    string // X-Loop marker, to recognise our own mail coming back
}

// Render writes the notice as a complete message. Header values are
// cleaned of line breaks and Q-encoded, so nothing taken from a message
// (subjects, addresses) can inject header fields.
func (n Message) Render(host string, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", mailmsg.Clean(n.From, 300), mailmsg.Clean(n.To, 300))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", mailmsg.Clean(n.Subject, 300)))
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <parley-%s@%s>\r\n", now.Format(time.RFC1123Z), randomHex(12), host)
	if n.ReplyTo != "" {
		fmt.Fprintf(&b, "Reply-To: %s\r\n", mailmsg.Clean(n.ReplyTo, 300))
	}
	if n.Loop != "" {
		fmt.Fprintf(&b, "X-Loop: %s\r\n", mailmsg.Clean(n.Loop, 300))
	}
	if n.AutoReplied {
		b.WriteString("Auto-Submitted: auto-replied\r\n")
	} else {
		b.WriteString("Auto-Submitted: auto-generated\r\n")
	}
	b.WriteString("Precedence: bulk\r\nMIME-Version: 1.0\r\n")
	text := strings.ReplaceAll(strings.ReplaceAll(n.Text, "\r\n", "\n"), "\n", "\r\n")
	if n.Attach == nil {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		b.WriteString(text)
		return b.Bytes()
	}
	boundary := "parley-" + randomHex(16)
	for bytes.Contains(n.Attach, []byte(boundary)) {
		boundary = "parley-" + randomHex(16)
	}
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", boundary, text)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n", boundary)
	b.Write(n.Attach)
	if !bytes.HasSuffix(n.Attach, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Queue puts a rendered notice in the outbound queue for rcpts, with the
// list's bounce address as return path. The caller pokes the delivery
// workers after commit.
func Queue(ctx context.Context, q db.Querier, l lists.List, rcpts []string, body []byte) error {
	return outqueue.Notice(ctx, q, l.ID, rcpts, mailaddr.ServiceAddr(l.Address, mailaddr.KindBounce, ""), body)
}

// Membership is the owners' notice of a join or leave a member made on
// their own (event "joined" or "left", how: "confirmed by mail", "by a
// one-click link", …), or nil when the list does not send them
// (lists.List.NotifyMembership). The caller queues it to the owners.
func Membership(l lists.List, address, event, how string) *Message {
	if !l.NotifyMembership {
		return nil
	}
	owner := mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "")
	prefix := l.SubjectPrefix
	if prefix == "" {
		prefix = "[" + l.Address + "]"
	}
	return &Message{From: owner, To: owner, Loop: owner,
		Subject: prefix + " " + mailmsg.Clean(address, 300) + " " + event,
		Text: mailmsg.Clean(address, 300) + " " + event + " " + l.Address + " (" + how + ").\n\n" +
			"You get these notices because the list tells its owners of every join and leave;\n" +
			"parley list set " + l.Address + " --notify-owners off stops them.\n"}
}

// DailyLimit is how many automatic mails (answers, confirmations,
// notices to authors) one address gets from this server in a day unless
// the caller says otherwise: enough for a person, too few to make the
// server a weapon against a victim whose address is forged.
const DailyLimit = 10

// Allow counts one automatic mail to addr (normalised) today and reports
// whether it is within limit (0: DailyLimit). The count is written in
// the caller's transaction, so a message handled twice (a retry after a
// crash) counts once.
func Allow(ctx context.Context, q db.Querier, addr string, limit int) (bool, error) {
	if limit == 0 {
		limit = DailyLimit
	}
	var n int
	err := q.GetContext(ctx, &n, `INSERT INTO reply_counts (address_norm, day, count) VALUES ($1, current_date, 1)
		ON CONFLICT (address_norm, day) DO UPDATE SET count = reply_counts.count + 1 RETURNING count`, addr)
	return err == nil && n <= limit, err
}

// Goodbye is the notice to a member who was removed (how: "by the list's
// owners", "by the one-click link in a list message"), or nil when the
// list does not send them (lists.List.Goodbye). The caller queues it to
// the address.
func Goodbye(l lists.List, address, how string) *Message {
	if !l.Goodbye {
		return nil
	}
	request := mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, "")
	return &Message{From: request, To: mailmsg.Clean(address, 300), Loop: request,
		Subject: "You are no longer subscribed to " + l.Address,
		Text: mailmsg.Clean(address, 300) + " was removed from " + l.Address + " (" + how + ").\n\n" +
			"You get no more mail from the list. To join again, mail " + mailaddr.ServiceAddr(l.Address, mailaddr.KindJoin, "") + ".\n" +
			"Questions go to the list's owners at " + mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "") + ".\n"}
}

// Refused is the notice to a person whose subscription request the
// owners refused, with their reason when they gave one.
func Refused(l lists.List, address, reason string) Message {
	request := mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, "")
	text := "Your request to join " + l.Address + " was not approved by the list's owners.\n"
	if reason = mailmsg.Clean(reason, 1000); reason != "" {
		text += "\n  Reason: " + reason + "\n"
	}
	return Message{From: request, To: mailmsg.Clean(address, 300), Loop: request,
		Subject: "Your request to join " + l.Address,
		Text:    text + "\nQuestions go to the list's owners at " + mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "") + ".\n"}
}
