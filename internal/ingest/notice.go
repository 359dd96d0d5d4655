package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/policy"
)

// notice is a message parley writes itself (to moderators, to a sender).
type notice struct {
	from, to, subject, text string
	attach                  []byte // a message to attach as message/rfc822, or nil
}

// render writes the notice as a complete message. Every header value that
// came from a message (subjects, addresses) has been through clean() and
// is Q-encoded here, so none can inject header fields.
func (n notice) render(host string, now time.Time) []byte {
	var b bytes.Buffer
	id := randomHex(12)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", n.from, n.to)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", n.subject))
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <parley-%s@%s>\r\n", now.Format(time.RFC1123Z), id, host)
	b.WriteString("Auto-Submitted: auto-generated\r\nPrecedence: bulk\r\nMIME-Version: 1.0\r\n")
	text := strings.ReplaceAll(strings.ReplaceAll(n.text, "\r\n", "\n"), "\n", "\r\n")
	if n.attach == nil {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		b.WriteString(text)
		return b.Bytes()
	}
	boundary := "parley-" + randomHex(16)
	for bytes.Contains(n.attach, []byte(boundary)) {
		boundary = "parley-" + randomHex(16)
	}
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", boundary, text)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n", boundary)
	b.Write(n.attach)
	if !bytes.HasSuffix(n.attach, []byte("\r\n")) {
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

// serviceAddr returns a list's service address, e.g. dev-owner@d.
func serviceAddr(l lists.List, suffix string) string {
	local, domain, _ := strings.Cut(l.Address, "@")
	return local + suffix + "@" + domain
}

// notifyModerators queues a notice of a held post to the list's
// moderators and owners.
func (s *Service) notifyModerators(ctx context.Context, tx *sqlx.Tx, l lists.List, id int64, p *prepared, d policy.Decision) error {
	var rcpts []string
	err := tx.SelectContext(ctx, &rcpts, `SELECT address FROM members WHERE list_id = $1 AND role IN ('owner', 'moderator') AND status = 'active' ORDER BY address_norm`, l.ID)
	if err != nil {
		return fmt.Errorf("moderators: %w", err)
	}
	if len(rcpts) == 0 {
		s.o.Logger.Warn("held post but the list has no owner or moderator to tell", "event", "no_moderator", "list", l.Address, "held_id", id)
		return nil
	}
	n := notice{
		from:    serviceAddr(l, "-owner"),
		to:      serviceAddr(l, "-owner"),
		subject: fmt.Sprintf("%s post held for approval: %s", prefixOr(l), mailmsg.Clean(p.sum.Subject, 200)),
		text: fmt.Sprintf("A post to %s is waiting for a moderator.\n\n"+
			"  From:    %s\n  Subject: %s\n  Reason:  %s\n  Held as: %d\n\n"+
			"To approve it:  parley held approve %d\n"+
			"To reject it:   parley held reject %d --reason \"...\"\n"+
			"To discard it:  parley held discard %d\n\nThe post is attached.\n",
			l.Address, p.sum.From, p.sum.Subject, d.Reason, id, id, id, id),
		attach: p.raw,
	}
	return s.queueNotice(ctx, tx, l, rcpts, n)
}

func prefixOr(l lists.List) string {
	if l.SubjectPrefix != "" {
		return l.SubjectPrefix
	}
	return "[" + l.Address + "]"
}

// queueNotice puts a notice in the outbound queue.
func (s *Service) queueNotice(ctx context.Context, tx *sqlx.Tx, l lists.List, rcpts []string, n notice) error {
	body := n.render(s.o.Hostname, s.o.Now())
	_, err := tx.ExecContext(ctx, `INSERT INTO outbound (kind, list_id, rcpts, mail_from, body) VALUES ('notice', $1, $2, $3, $4)`,
		l.ID, pq.StringArray(rcpts), serviceAddr(l, "-bounces"), body)
	if err != nil {
		return fmt.Errorf("queue notice: %w", err)
	}
	return nil
}
