package ingest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/inbound"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/moderation"
	"github.com/parley-list/parley/internal/notify"
	"github.com/parley-list/parley/internal/policy"
)

// outcome is what happened for one recipient, for the log.
type outcome struct {
	rcpt     Recipient
	decision policy.Decision
	article  int64
	dup      bool
	// tellAuthor: a held post's author may be told it awaits approval
	// (a member, or an authenticated From:).
	tellAuthor bool
}

// Accept judges, archives or records the message for every recipient and
// returns nil only once that is committed. When every post recipient's
// policy refuses the message, nothing is written and the first refusal is
// returned as a *Rejection.
//
// The policy is decided first, from committed state; then everything is
// written in one transaction. The common case, one list accepting the
// post, goes through the group commit (batch.go): one statement in a
// transaction shared with the posts that arrived at the same time.
func (s *Service) Accept(ctx context.Context, env Envelope) error {
	if env.Source == "" {
		env.Source = "smtp"
	}
	p, err := s.prepare(env)
	if err != nil {
		s.logRefused(env, err)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	defer cancel()
	outs := make([]outcome, len(env.Rcpts))
	for i, r := range env.Rcpts {
		outs[i], err = s.decide(ctx, env, p, r)
		if err != nil {
			return err
		}
	}
	if err := allRejected(outs); err != nil {
		for _, o := range outs {
			s.logOutcome(env, p, o)
		}
		return err
	}
	if err := s.storeSure(ctx, env, p, outs); err != nil {
		return err
	}
	for _, o := range outs {
		s.logOutcome(env, p, o)
		s.announce(o)
	}
	return nil
}

// announce wakes readers and delivery workers after a commit.
func (s *Service) announce(o outcome) {
	if o.rcpt.Route.Kind != mailaddr.KindPost {
		return
	}
	switch {
	case o.decision.Action == policy.Accept && !o.dup:
		s.poke(notify.Archive, strconv.FormatInt(o.rcpt.List.ID, 10))
		s.poke(notify.Outbound, "")
	case o.decision.Action == policy.Hold:
		s.poke(notify.Outbound, "")
	}
}

// allRejected returns the first rejection when no recipient took the
// message, so that nothing is written and the sender is told.
func allRejected(outs []outcome) error {
	for _, o := range outs {
		if o.decision.Action != policy.Reject {
			return nil
		}
	}
	if len(outs) == 0 {
		return nil
	}
	return reject(550, [3]int{5, 7, 1}, "%s", outs[0].decision.Reason)
}

// storeSure writes the outcomes, and when the database session breaks
// asks again until the database answers or the deadline passes. A broken
// session leaves it unknown whether the commit happened (its
// acknowledgement may be what was lost); writing is idempotent, so asking
// again tells, and a message that did land gets its 250 instead of a 451
// for mail that was in fact kept.
func (s *Service) storeSure(ctx context.Context, env Envelope, p *prepared, outs []outcome) error {
	err := s.store(ctx, env, p, outs)
	for wait := 100 * time.Millisecond; err != nil && db.IsConnectionLost(err) && ctx.Err() == nil; wait = min(2*wait, 2*time.Second) {
		s.o.Logger.Debug("database session lost while storing; asking again", "event", "store_retry", "msg_id", p.sum.MessageID, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if err = s.store(ctx, env, p, outs); err == nil {
			for i := range outs {
				outs[i].dup = false // found stored: by this message's own earlier attempt
			}
		}
	}
	return err
}

// store writes the outcomes: the common case, one list accepting the post,
// through the group commit; anything else in one transaction.
func (s *Service) store(ctx context.Context, env Envelope, p *prepared, outs []outcome) error {
	if len(outs) == 1 && outs[0].rcpt.Route.Kind == mailaddr.KindPost && outs[0].decision.Action == policy.Accept {
		st, err := s.batcher().write(ctx, s.post(outs[0].rcpt.List, p, env.Source))
		if err != nil {
			return err
		}
		outs[0].article, outs[0].dup = st.Article, st.Duplicate
		return nil
	}
	return db.InTx(ctx, s.o.DB, func(tx *sqlx.Tx) error {
		for i := range outs {
			if err := s.write(ctx, tx, env, p, &outs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// decide judges the message for one recipient without writing anything.
func (s *Service) decide(ctx context.Context, env Envelope, p *prepared, r Recipient) (outcome, error) {
	if r.Route.Kind != mailaddr.KindPost {
		return outcome{rcpt: r, decision: policy.Decision{Action: policy.Accept, Rule: string(r.Route.Kind), Reason: "stored for processing"}}, nil
	}
	f, err := s.facts(ctx, s.o.DB, env, p, r)
	if err != nil {
		return outcome{}, err
	}
	o := outcome{rcpt: r, decision: policy.Decide(f)}
	if o.decision.Action == policy.Hold && !f.NullSender && !f.MailerDemon {
		// Only a held post needs it, and it may ask DNS: here, before the
		// transaction, not inside it.
		from, _ := mailaddr.Parse(p.sum.From)
		o.tellAuthor = f.Role != "" || s.o.Authors.Authenticated(ctx, p.raw, from.Domain)
	}
	return o, nil
}

// write records one recipient's outcome in the transaction.
func (s *Service) write(ctx context.Context, tx *sqlx.Tx, env Envelope, p *prepared, o *outcome) error {
	r, d := o.rcpt, o.decision
	if r.Route.Kind != mailaddr.KindPost {
		return s.storeInbound(ctx, tx, env, p, r)
	}
	switch d.Action {
	case policy.Accept:
		st, err := s.archive(ctx, tx, r.List, p, env.Source)
		o.article, o.dup = st.Article, st.Duplicate
		return err
	case policy.Hold:
		var err error
		n := moderated(env, p, r, d, moderation.Held)
		n.TellAuthor = o.tellAuthor
		o.dup, err = s.o.Moderation.Hold(ctx, tx, r.List, n)
		return err
	default:
		// Discarded, or rejected while another recipient accepted the
		// message: record it so that nothing vanishes without a trace.
		state := map[policy.Action]string{policy.Discard: moderation.Discarded, policy.Reject: moderation.Rejected}[d.Action]
		id, err := moderation.Record(ctx, tx, moderated(env, p, r, d, state))
		o.dup = err == nil && id == 0
		return err
	}
}

// post is an accepted post to archive, with its delivery to the members.
func (s *Service) post(l lists.List, p *prepared, source string) archive.Post {
	return archive.Post{ListID: l.ID, Raw: p.raw, Summary: p.sum, Source: source, ReceivedAt: s.o.Now(),
		Queue: true, BySubject: l.SubjectThread, EnvelopeFrom: p.mailFrom, Derived: p.derived}
}

// archive stores an accepted post and queues its delivery to the members.
func (s *Service) archive(ctx context.Context, q db.Querier, l lists.List, p *prepared, source string) (archive.Stored, error) {
	return archive.Insert(ctx, q, s.post(l, p, source))
}

// storeInbound keeps mail for a list's service addresses for its
// processor (commands, owners, bounces).
func (s *Service) storeInbound(ctx context.Context, tx *sqlx.Tx, env Envelope, p *prepared, r Recipient) error {
	return inbound.Store(ctx, tx, inbound.New{ListID: r.List.ID, Kind: string(r.Route.Kind), Rcpt: r.Address,
		Detail: r.Route.Detail, MailFrom: env.From, ContentKey: p.sum.ContentKey, Raw: p.raw})
}

// facts gathers what the policy rules look at: membership of the From
// address (or else the envelope sender) and the bans.
func (s *Service) facts(ctx context.Context, q db.Querier, env Envelope, p *prepared, r Recipient) (policy.Facts, error) {
	f := policy.Facts{
		List:        r.List.Address,
		ListID:      mailaddr.ListID(r.List.Address),
		Policy:      r.List.PostPolicy,
		NonMember:   r.List.NonMember,
		Sender:      p.sum.From,
		NullSender:  env.From == "",
		ListIDs:     p.sum.ListIDs,
		XLoop:       p.sum.XLoop,
		AutoSubmit:  p.sum.AutoSubmitted,
		Precedence:  p.sum.Precedence,
		MailerDemon: mailaddr.IsMailerDaemon(env.From) || mailaddr.IsMailerDaemon(p.sum.From),
	}
	if f.Sender == "" {
		f.Sender = env.From
	}
	var cands []string
	for _, c := range []string{p.sum.From, env.From} {
		if a, err := mailaddr.Parse(c); err == nil {
			cands = append(cands, a.String())
		}
	}
	m, ok, err := members.FirstOf(ctx, q, r.List.ID, cands)
	if err != nil {
		return f, fmt.Errorf("policy facts: %w", err)
	}
	if ok {
		f.Role, f.Moderated = m.Role, m.Moderated
	}
	if f.Banned, err = policy.Banned(ctx, q, r.List.ID, f.Sender); err != nil {
		return f, fmt.Errorf("policy facts: %w", err)
	}
	return f, nil
}

// moderated is the moderation record of a post for one list.
func moderated(env Envelope, p *prepared, r Recipient, d policy.Decision, state string) moderation.New {
	return moderation.New{ListID: r.List.ID, State: state, Rule: d.Rule, Reason: d.Reason, MailFrom: env.From,
		Raw: p.raw, Summary: p.sum}
}

// logRefused logs a message refused before any list's policy saw it (too
// big, malformed): the one line for that decision, counted as rejected.
func (s *Service) logRefused(env Envelope, err error) {
	if s.o.Outcomes != nil {
		s.o.Outcomes.WithLabelValues("rejected").Inc()
	}
	s.o.Logger.Info("message refused", "event", "data_refused", "reason", err.Error(), "from", env.From,
		"remote", env.Remote, "bytes", len(env.Data))
}

func (s *Service) logOutcome(env Envelope, p *prepared, o outcome) {
	event := map[policy.Action]string{policy.Accept: "accepted", policy.Hold: "held",
		policy.Discard: "discarded", policy.Reject: "rejected"}[o.decision.Action]
	if o.dup {
		event = "duplicate"
	}
	if o.rcpt.Route.Kind != mailaddr.KindPost {
		event = "stored"
	}
	if s.o.Outcomes != nil {
		s.o.Outcomes.WithLabelValues(event).Inc()
	}
	attrs := []any{"event", event, "list", o.rcpt.List.Address, "msg_id", p.sum.MessageID,
		"rule", o.decision.Rule, "reason", o.decision.Reason, "from", p.sum.From, "remote", env.Remote}
	if o.article > 0 {
		attrs = append(attrs, "article", o.article)
	}
	if o.rcpt.Route.Kind != mailaddr.KindPost {
		attrs = append(attrs, "kind", string(o.rcpt.Route.Kind))
	}
	s.o.Logger.Info("message "+event, attrs...)
}
