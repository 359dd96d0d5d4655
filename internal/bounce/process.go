package bounce

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/inbound"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notice"
)

// Processor turns mail received at list-bounces addresses into bounce
// scores, and tells members and owners when delivery is disabled.
type Processor struct {
	DB       *sqlx.DB
	Log      *slog.Logger
	Scoring  Scoring
	Hostname string
	Poke     func() // wakes the delivery workers after a notice is queued
	// Counts, when set, counts processed reports by result (NewCounts).
	Counts *prometheus.CounterVec
}

// NewCounts returns the counter for Processor.Counts.
func NewCounts() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_bounces_total",
		Help: "Bounce reports and refusals processed, by result: recorded (a member's score rose), disabled (delivery paused), not_member, no_recipient (a bounce that names nobody), not_bounce (auto-replies, delay and delivery reports, feedback).",
	}, []string{"result"})
}

func (p *Processor) count(result string) {
	if p.Counts != nil {
		p.Counts.WithLabelValues(result).Inc()
	}
}

// Run processes stored bounces every interval until ctx ends.
func (p *Processor) Run(ctx context.Context, interval time.Duration) error {
	// Not bounce_error: that is deliver's, for a refusal it could not record.
	return inbound.Run(ctx, interval, p.Log, "bounce_drain_failed", p.ProcessAll)
}

// ProcessAll handles every unprocessed message, one transaction each, and
// returns how many it handled.
func (p *Processor) ProcessAll(ctx context.Context) (int, error) {
	return inbound.Drain(ctx, p.DB, p.Log, p.processOne)
}

// processOne handles the oldest unprocessed bounce and returns its id (0
// when there was none).
func (p *Processor) processOne(ctx context.Context) (int64, error) {
	return inbound.Claim(ctx, p.DB, inbound.Bounces, p.handle, p.Poke)
}

// handle records the events one bounce stands for.
func (p *Processor) handle(ctx context.Context, tx *sqlx.Tx, in inbound.Message) (bool, error) {
	l, err := lists.GetByID(ctx, tx, in.ListID)
	if err != nil {
		return false, err
	}
	log := p.Log.With("list", l.Address, "inbound_id", in.ID)
	rep := Parse(in.Raw)
	if rep.Kind != Bounce {
		p.count("not_bounce")
		log.Info("not a bounce; ignored", "event", "bounce_ignored", "reason", "not a bounce", "kind", string(rep.Kind))
		return false, nil
	}
	events := eventsOf(in, rep)
	if len(events) == 0 {
		p.count("no_recipient")
		log.Info("bounce names no recipient; ignored", "event", "bounce_ignored", "reason", "no recipient")
		return false, nil
	}
	notified := false
	for _, ev := range events {
		out, err := p.Scoring.Record(ctx, tx, ev)
		if err != nil {
			return false, err
		}
		if n, err := p.after(ctx, tx, l, ev, out); err != nil {
			return false, err
		} else if n {
			notified = true
		}
	}
	return notified, nil
}

// eventsOf returns the events a bounce stands for. The VERP address, when
// there is one, names the member for sure; otherwise the report's own
// recipients are used.
func eventsOf(in inbound.Message, rep Report) []Event {
	var events []Event
	if addr, ok := mailaddr.DecodeVERP(in.Detail); ok {
		rc := Recipient{Address: addr, Action: "failed"}
		if len(rep.Recipients) > 0 {
			rc = rep.Recipients[0]
			rc.Address = addr
		}
		events = append(events, Event{ListID: in.ListID, Address: addr, Recipient: rc, Source: "dsn"})
	} else {
		for _, rc := range rep.Recipients {
			events = append(events, Event{ListID: in.ListID, Address: rc.Address, Recipient: rc, Source: "dsn"})
		}
	}
	return events
}

// after logs the event and, when it disabled a member, queues the notices.
func (p *Processor) after(ctx context.Context, q db.Querier, l lists.List, ev Event, out Outcome) (bool, error) {
	if !out.Member {
		p.count("not_member")
		p.Log.Info("bounce for an address that is not a member; ignored", "event", "bounce_ignored", "reason", "not a member",
			"list", l.Address, "rcpt", ev.Address, "source", ev.Source)
		return false, nil
	}
	p.count("recorded")
	if !out.Disabled {
		p.Log.Info("bounce recorded", "event", "bounce_recorded", "list", l.Address, "rcpt", ev.Address,
			"status", ev.Recipient.Status, "score", out.Score, "source", ev.Source)
		return false, nil
	}
	p.count("disabled")
	p.Log.Warn("delivery disabled by bounces", "event", "bounce_disabled", "list", l.Address, "rcpt", ev.Address,
		"status", ev.Recipient.Status, "score", out.Score, "source", ev.Source)
	now := time.Now()
	member := notice.Message{From: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""), To: ev.Address,
		Subject: fmt.Sprintf("Your mail from %s is paused", l.Address),
		Text: fmt.Sprintf("Mail from %s to you has bounced too often, so delivery to %s is paused.\n"+
			"The last error was: %s\n\nTo receive posts again, ask the list's owners (%s) to re-enable you.\n",
			l.Address, ev.Address, ev.Recipient.Diagnostic, mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""))}
	if err := notice.Queue(ctx, q, l, []string{ev.Address}, member.Render(p.Hostname, now)); err != nil {
		return false, err
	}
	owners, err := members.Owners(ctx, q, l.ID)
	if err != nil || len(owners) == 0 {
		return true, err
	}
	owner := notice.Message{From: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""), To: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""),
		Subject: fmt.Sprintf("%s: delivery to %s disabled by bounces", l.Address, ev.Address),
		Text: fmt.Sprintf("Delivery to %s was disabled after repeated bounces (score %.1f).\nLast error: %s\n\n"+
			"To re-enable: parley member set %s %s --status active\n", ev.Address, out.Score, ev.Recipient.Diagnostic, l.Address, ev.Address)}
	return true, notice.Queue(ctx, q, l, owners, owner.Render(p.Hostname, now))
}

// RecordSMTP records a permanent refusal the relay gave at delivery time
// (a synchronous bounce), exactly like a DSN for the same recipient.
func (p *Processor) RecordSMTP(ctx context.Context, listID int64, rcpt string, code int, msg string) error {
	status := statusCode(msg)
	if status == "" {
		status = fmt.Sprintf("%d.0.0", code/100)
	}
	ev := Event{ListID: listID, Address: rcpt, Source: "smtp",
		Recipient: Recipient{Address: rcpt, Status: status, Action: "failed", Diagnostic: fmt.Sprintf("%d %s", code, msg)}}
	notified := false
	err := db.InTx(ctx, p.DB, func(tx *sqlx.Tx) error {
		l, err := lists.GetByID(ctx, tx, listID)
		if err != nil {
			return err
		}
		out, err := p.Scoring.Record(ctx, tx, ev)
		if err != nil {
			return err
		}
		notified, err = p.after(ctx, tx, l, ev, out)
		return err
	})
	if err == nil && notified && p.Poke != nil {
		p.Poke()
	}
	return err
}
