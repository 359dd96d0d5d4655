package commands

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/notice"
)

// The mail one command message causes is collected while its commands run
// and sent when they are done (flush), so that one message makes at most
// one mail to any one address: the answer to the sender is folded into a
// confirmation or welcome that goes to the sender anyway, and a second
// confirmation to the same address is not made. A forged From: therefore
// costs its victim one mail, not two or three.

// pending is a notice waiting in a message's outbox.
type pending struct {
	n     notice.Message
	rcpts []string
}

// norm is an address's normalised form for comparison ("" for garbage).
func norm(addr string) string {
	a, err := mailaddr.Parse(addr)
	if err != nil {
		return ""
	}
	return a.String()
}

// holds reports whether the outbox already mails addr.
func (t *trail) holds(addr string) bool {
	n := norm(addr)
	for _, p := range t.outbox {
		for _, r := range p.rcpts {
			if norm(r) == n {
				return true
			}
		}
	}
	return false
}

// post puts a notice in the outbox.
func (t *trail) post(n notice.Message, rcpts []string) {
	t.outbox = append(t.outbox, pending{n: n, rcpts: rcpts})
}

// flush sends the outbox and the answer to the sender: folded into the
// notice that goes to the sender alone, when there is one; otherwise as
// a reply of its own, within the daily limit. An empty answer (every
// command's result is in a notice) sends no reply. It reports whether
// anything was queued.
func (p *Processor) flush(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, subject, answer string) (bool, error) {
	answer = strings.TrimSpace(answer)
	var toSender *pending
	for i := range m.outbox {
		if len(m.outbox[i].rcpts) == 1 && norm(m.outbox[i].rcpts[0]) == norm(m.sender) {
			toSender = &m.outbox[i]
			break
		}
	}
	switch {
	case toSender != nil && answer != "":
		toSender.n.Text += "\nYour message also asked:\n\n" + answer + "\n"
	case toSender == nil && answer != "":
		ok, err := p.allow(ctx, tx, m, m.sender)
		if err != nil {
			return false, err
		}
		if ok {
			request := mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, "")
			m.post(notice.Message{From: request, To: m.sender, Subject: subject, Text: answer + "\n",
				AutoReplied: true, Loop: request}, []string{m.sender})
		}
	}
	for _, pn := range m.outbox {
		if err := notice.Queue(ctx, tx, l, pn.rcpts, pn.n.Render(p.Hostname, time.Now())); err != nil {
			return false, err
		}
	}
	return len(m.outbox) > 0, nil
}

// replySubject is "Re: " and the subject, without a second "Re:" (nor
// one before a reply marker of another language, "AW:", "SV:").
func replySubject(subject string) string {
	subject = strings.TrimSpace(subject)
	if subject == "" {
		return "Re: your message"
	}
	marker, _, ok := strings.Cut(subject, ":")
	if m := strings.ToLower(strings.TrimSpace(marker)); ok && isReplyMarker(m) && m != "fwd" && m != "fw" && m != "wg" && m != "tr" {
		return subject
	}
	return "Re: " + subject
}

// human says a duration as people do: "3 days", "1 hour", "45 minutes".
func human(d time.Duration) string {
	unit := func(n int64, what string) string {
		if n == 1 {
			return "1 " + what
		}
		return strconv.FormatInt(n, 10) + " " + what + "s"
	}
	switch {
	case d >= 48*time.Hour || d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64((d+12*time.Hour)/(24*time.Hour)), "day")
	case d >= 2*time.Hour || d >= time.Hour && d%time.Hour == 0:
		return unit(int64((d+30*time.Minute)/time.Hour), "hour")
	}
	return unit(max(1, int64((d+30*time.Second)/time.Minute)), "minute")
}
