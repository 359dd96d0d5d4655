package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/policy"
)

// outcome is what happened for one recipient, for the log.
type outcome struct {
	rcpt     Recipient
	decision policy.Decision
	article  int64
	dup      bool
}

// Accept judges, archives or records the message for every recipient in
// one transaction and returns nil only once it is committed. When every
// post recipient's policy refuses the message, nothing is written and the
// first refusal is returned as a *Rejection.
func (s *Service) Accept(ctx context.Context, env Envelope) error {
	if env.Source == "" {
		env.Source = "smtp"
	}
	p, err := s.prepare(env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	defer cancel()
	var outs []outcome
	err = db.InTx(ctx, s.o.DB, func(tx *sqlx.Tx) error {
		outs = outs[:0]
		for _, r := range env.Rcpts {
			o, err := s.acceptOne(ctx, tx, env, p, r)
			if err != nil {
				return err
			}
			outs = append(outs, o)
		}
		return allRejected(outs)
	})
	if err != nil {
		return err
	}
	for _, o := range outs {
		s.logOutcome(env, p, o)
	}
	return nil
}

// allRejected returns the first rejection when no recipient took the
// message, so the transaction rolls back and the sender is told.
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

func (s *Service) acceptOne(ctx context.Context, tx *sqlx.Tx, env Envelope, p *prepared, r Recipient) (outcome, error) {
	if r.Route.Kind != mailaddr.KindPost {
		return s.storeInbound(ctx, tx, env, p, r)
	}
	f, err := s.facts(ctx, tx, env, p, r)
	if err != nil {
		return outcome{}, err
	}
	d := policy.Decide(f)
	o := outcome{rcpt: r, decision: d}
	switch d.Action {
	case policy.Accept:
		st, err := s.archive(ctx, tx, r.List.ID, p, env.Source)
		o.article, o.dup = st.Article, st.Duplicate
		return o, err
	case policy.Hold:
		return o, s.hold(ctx, tx, env, p, r, d)
	default:
		// Discarded, or rejected while another recipient accepted the
		// message: record it so that nothing vanishes without a trace.
		state := map[policy.Action]string{policy.Discard: "discarded", policy.Reject: "rejected"}[d.Action]
		_, err := s.recordModeration(ctx, tx, env, p, r, d, state)
		return o, err
	}
}

// archive stores an accepted post and queues its delivery to the members.
func (s *Service) archive(ctx context.Context, tx *sqlx.Tx, listID int64, p *prepared, source string) (archive.Stored, error) {
	st, err := archive.Insert(ctx, tx, archive.Post{
		ListID: listID, Raw: p.raw, Summary: p.sum, Source: source, ReceivedAt: s.o.Now(),
	})
	if err != nil || st.Duplicate {
		return st, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbound (kind, list_id, message) VALUES ('post', $1, $2)`, listID, st.ID)
	if err != nil {
		return st, fmt.Errorf("queue delivery: %w", err)
	}
	_, err = tx.ExecContext(ctx, `SELECT pg_notify('outbound', '')`)
	return st, err
}

// storeInbound keeps mail for a list's service addresses for its
// processor (commands, owners, bounces).
func (s *Service) storeInbound(ctx context.Context, tx *sqlx.Tx, env Envelope, p *prepared, r Recipient) (outcome, error) {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO inbound (list_id, kind, rcpt, detail, mail_from, content_key, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (list_id, kind, rcpt, content_key) DO NOTHING`,
		r.List.ID, string(r.Route.Kind), r.Address, r.Route.Detail, env.From, p.sum.ContentKey, p.raw)
	if err != nil {
		return outcome{}, fmt.Errorf("store %s mail: %w", r.Route.Kind, err)
	}
	return outcome{rcpt: r, decision: policy.Decision{Action: policy.Accept, Rule: string(r.Route.Kind), Reason: "stored for processing"}}, nil
}

// facts gathers what the policy rules look at.
func (s *Service) facts(ctx context.Context, tx *sqlx.Tx, env Envelope, p *prepared, r Recipient) (policy.Facts, error) {
	f := policy.Facts{
		List:        r.List.Address,
		ListID:      policy.ListID(r.List.Address),
		Policy:      r.List.PostPolicy,
		NonMember:   r.List.NonMember,
		Sender:      p.sum.From,
		NullSender:  env.From == "",
		ListIDs:     p.sum.ListIDs,
		XLoop:       p.sum.XLoop,
		AutoSubmit:  p.sum.AutoSubmitted,
		Precedence:  p.sum.Precedence,
		MailerDemon: policy.IsMailerDaemon(env.From) || policy.IsMailerDaemon(p.sum.From),
	}
	if f.Sender == "" {
		f.Sender = env.From
	}
	for _, cand := range []string{p.sum.From, env.From} {
		a, err := mailaddr.Parse(cand)
		if err != nil {
			continue
		}
		var m struct {
			Role      string `db:"role"`
			Moderated bool   `db:"moderated"`
		}
		err = tx.GetContext(ctx, &m, `SELECT role, moderated FROM members WHERE list_id = $1 AND address_norm = $2`, r.List.ID, a.String())
		if err == nil {
			f.Role, f.Moderated = memberRole(m.Role), m.Moderated
			break
		}
		if !db.IsNoRows(err) {
			return f, fmt.Errorf("membership: %w", err)
		}
	}
	banned, err := isBanned(ctx, tx, r.List.ID, f.Sender)
	f.Banned = banned
	return f, err
}

// hold stores a post for moderation and notifies the moderators, once:
// a retried post that is already held changes nothing.
func (s *Service) hold(ctx context.Context, tx *sqlx.Tx, env Envelope, p *prepared, r Recipient, d policy.Decision) error {
	id, err := s.recordModeration(ctx, tx, env, p, r, d, "held")
	if err != nil || id == 0 {
		return err
	}
	return s.notifyModerators(ctx, tx, r.List, id, p, d)
}

// recordModeration inserts a moderation record and returns its id, or 0
// when the same post was already recorded for this list.
func (s *Service) recordModeration(ctx context.Context, tx *sqlx.Tx, env Envelope, p *prepared, r Recipient, d policy.Decision, state string) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `
		INSERT INTO moderation (list_id, state, rule, reason, mail_from, from_addr, subject, message_id, content_key, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (list_id, message_id, content_key) DO NOTHING
		RETURNING id`,
		r.List.ID, state, d.Rule, d.Reason, env.From, p.sum.From, p.sum.Subject, p.sum.MessageID, p.sum.ContentKey, p.raw)
	if db.IsNoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("moderation: %w", err)
	}
	return id, nil
}

func (s *Service) logOutcome(env Envelope, p *prepared, o outcome) {
	event := map[policy.Action]string{policy.Accept: "accepted", policy.Hold: "held",
		policy.Discard: "discarded", policy.Reject: "rejected"}[o.decision.Action]
	if o.dup {
		event = "duplicate"
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

// isBanned matches the sender against the list's and the server-wide
// ban patterns.
func isBanned(ctx context.Context, tx *sqlx.Tx, listID int64, sender string) (bool, error) {
	var patterns pq.StringArray
	err := tx.GetContext(ctx, &patterns, `SELECT coalesce(array_agg(pattern), '{}') FROM bans WHERE list_id = $1 OR list_id IS NULL`, listID)
	if err != nil {
		return false, fmt.Errorf("bans: %w", err)
	}
	addr := strings.ToLower(sender)
	for _, p := range patterns {
		if Glob(p, addr) {
			return true, nil
		}
	}
	return false, nil
}
