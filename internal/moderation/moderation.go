// Package moderation owns the posts that did not go straight to the
// archive (the moderation table): those held for a moderator, and the
// record of those discarded or refused while another list took the same
// message, so that nothing vanishes without a trace. It tells the
// moderators of a held post and carries out their decisions (approve,
// reject, discard), whether they come by mail (internal/commands) or from
// the CLI.
//
// A held post is recorded in intake's transaction, with the moderators'
// notice queued in the same one; a retried post that is already recorded
// changes nothing. A decision locks the record, so two moderators deciding
// at once decide once, and approving archives the post exactly as if the
// policy had accepted it.
package moderation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notice"
	"github.com/parley-list/parley/internal/notify"
	"github.com/parley-list/parley/internal/tokens"
)

// ErrNotHeld says a moderation record is not (or no longer) waiting.
var ErrNotHeld = errors.New("not held")

// States of a record.
const (
	Held      = "held"
	Approved  = "approved"
	Rejected  = "rejected"
	Discarded = "discarded"
)

// Post is a post kept for moderation, or the record of a discarded or
// refused one.
type Post struct {
	ID         int64     `db:"id" json:"id"`
	ListID     int64     `db:"list_id" json:"-"`
	State      string    `db:"state" json:"state"`
	Rule       string    `db:"rule" json:"rule"`
	Reason     string    `db:"reason" json:"reason"`
	MailFrom   string    `db:"mail_from" json:"mail_from"`
	From       string    `db:"from_addr" json:"from"`
	Subject    string    `db:"subject" json:"subject"`
	MessageID  string    `db:"message_id" json:"message_id"`
	ReceivedAt time.Time `db:"received_at" json:"received_at"`
	Raw        []byte    `db:"raw" json:"-"`
}

const postCols = `id, list_id, state, rule, reason, mail_from, from_addr, subject, message_id, received_at, raw`

// HeldPosts returns a list's posts waiting for a moderator (listID 0:
// every list's), oldest first.
func HeldPosts(ctx context.Context, q db.Querier, listID int64) ([]Post, error) {
	var ps []Post
	err := q.SelectContext(ctx, &ps, `SELECT `+postCols+` FROM moderation WHERE ($1 = 0 OR list_id = $1) AND state = 'held' ORDER BY id`, listID)
	return ps, err
}

// Get returns one moderation record.
func Get(ctx context.Context, q db.Querier, id int64) (Post, error) {
	var p Post
	err := q.GetContext(ctx, &p, `SELECT `+postCols+` FROM moderation WHERE id = $1`, id)
	if db.IsNoRows(err) {
		return Post{}, errs.Kindf(ErrNotHeld, "no held post %d", id)
	}
	return p, err
}

// New is a post to record.
type New struct {
	ListID   int64
	State    string // Held, Rejected or Discarded
	Rule     string // the policy rule that decided
	Reason   string
	MailFrom string // envelope sender, "" for <>
	Raw      []byte
	Summary  *mailmsg.Summary
	// TellAuthor: tell the author a held post awaits approval. Intake sets
	// it only for a member or an authenticated From:, never for a
	// stranger whose address may be forged (backscatter).
	TellAuthor bool
}

// Record stores a moderation record in the caller's transaction and
// returns its id, or 0 when the same post was already recorded for this
// list (a retry).
func Record(ctx context.Context, q db.Querier, n New) (int64, error) {
	var id int64
	s := n.Summary
	err := q.GetContext(ctx, &id, `
		INSERT INTO moderation (list_id, state, rule, reason, mail_from, from_addr, subject, message_id, content_key, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (list_id, message_id, content_key) DO NOTHING
		RETURNING id`,
		n.ListID, n.State, n.Rule, n.Reason, n.MailFrom, s.From, s.Subject, s.MessageID, s.ContentKey, n.Raw)
	if db.IsNoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("moderation: %w", err)
	}
	return id, nil
}

// Poker asks for a cross-process notification once a change is committed
// (see internal/notify).
type Poker interface {
	Poke(channel, payload string)
}

// Options configure a Service.
type Options struct {
	DB       *sqlx.DB
	Logger   *slog.Logger
	Hostname string // for notices' Message-IDs and held posts re-read on approval
	Notify   Poker  // nil: no notifications (workers poll)
	Now      func() time.Time
}

// Service holds posts and decides on them.
type Service struct{ o Options }

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}
}

func (s *Service) poke(channel, payload string) {
	if s.o.Notify != nil {
		s.o.Notify.Poke(channel, payload)
	}
}

// Hold records a held post in the caller's transaction and queues the
// moderators' notice, once: a retried post that is already held changes
// nothing and reports dup. The caller pokes the delivery workers after
// its commit.
func (s *Service) Hold(ctx context.Context, tx *sqlx.Tx, l lists.List, n New) (dup bool, err error) {
	n.State = Held
	id, err := Record(ctx, tx, n)
	if err != nil || id == 0 {
		return err == nil, err
	}
	if err := s.notifyModerators(ctx, tx, l, id, n); err != nil {
		return false, err
	}
	if n.TellAuthor {
		return false, s.tellAuthor(ctx, tx, l, n)
	}
	return false, nil
}

// tellAuthor queues the one "awaiting approval" notice to a held post's
// author, within the daily limit of automatic mail to an address.
func (s *Service) tellAuthor(ctx context.Context, tx *sqlx.Tx, l lists.List, n New) error {
	author, err := mailaddr.Parse(n.Summary.From)
	if err != nil || mailaddr.IsMailerDaemon(n.Summary.From) {
		return nil
	}
	if own, err := lists.Answers(ctx, tx, author); err != nil || own {
		return err
	}
	ok, err := notice.Allow(ctx, tx, author.String(), 0)
	if err != nil || !ok {
		return err
	}
	owner := mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "")
	m := notice.Message{From: owner, To: n.Summary.From, Loop: owner, AutoReplied: true,
		Subject: prefixOr(l) + " your post awaits moderator approval: " + mailmsg.Clean(n.Summary.Subject, 200),
		Text: fmt.Sprintf("Your post to %s is waiting for a moderator's approval.\n\n  Subject: %s\n  Reason:  %s\n\n"+
			"You need not do anything: you will hear from us again only if it is not accepted.\n"+
			"Questions go to the list's owners at %s.\n", l.Address, mailmsg.Clean(n.Summary.Subject, 200), n.Reason, owner)}
	return notice.Queue(ctx, tx, l, []string{n.Summary.From}, m.Render(s.o.Hostname, s.o.Now()))
}

// notifyModerators queues a notice of a held post to the list's
// moderators and owners.
func (s *Service) notifyModerators(ctx context.Context, tx *sqlx.Tx, l lists.List, id int64, n New) error {
	rcpts, err := members.Owners(ctx, tx, l.ID)
	if err != nil {
		return fmt.Errorf("moderators: %w", err)
	}
	if len(rcpts) == 0 {
		s.o.Logger.Warn("held post but the list has no owner or moderator to tell", "event", "no_moderator", "list", l.Address, "held_id", id)
		return nil
	}
	// A reply to the notice decides: the token in its return address
	// proves the reply comes from someone who received the notice.
	ownerAddr := mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "")
	owner, _ := mailaddr.Parse(ownerAddr)
	raw, err := tokens.Create(ctx, tx, tokens.New{ListID: l.ID, Given: owner.String(), Address: owner,
		Action: tokens.Held, Payload: strconv.FormatInt(id, 10), TTL: 7 * 24 * time.Hour})
	if err != nil {
		return err
	}
	confirm := mailaddr.ServiceAddr(l.Address, mailaddr.KindConfirm, raw)
	m := notice.Message{
		From:    confirm,
		ReplyTo: confirm,
		To:      ownerAddr,
		Subject: fmt.Sprintf("%s post held for approval: %s", prefixOr(l), mailmsg.Clean(n.Summary.Subject, 200)),
		Text: fmt.Sprintf("A post to %s is waiting for a moderator.\n\n"+
			"  From:    %s\n  Subject: %s\n  Reason:  %s\n  Held as: %d\n\n"+
			"To approve it, just reply to this message.\n"+
			"To reject it, reply with \"reject\" and a reason on the first line; to drop it silently, reply \"discard\".\n"+
			"On the server: parley held approve|reject|discard %d\n\nThe post is attached.\n",
			l.Address, n.Summary.From, n.Summary.Subject, n.Reason, id, id),
		Attach: n.Raw,
	}
	return notice.Queue(ctx, tx, l, rcpts, m.Render(s.o.Hostname, s.o.Now()))
}

func prefixOr(l lists.List) string {
	if l.SubjectPrefix != "" {
		return l.SubjectPrefix
	}
	return "[" + l.Address + "]"
}

// lockHeld locks a record that must still be held. listID, when not 0,
// must be the record's list: a moderator of one list cannot decide on
// another list's posts.
func lockHeld(ctx context.Context, tx *sqlx.Tx, id, listID int64) (Post, lists.List, error) {
	var p Post
	err := tx.GetContext(ctx, &p, `SELECT `+postCols+` FROM moderation WHERE id = $1 AND ($2 = 0 OR list_id = $2) FOR UPDATE`, id, listID)
	if db.IsNoRows(err) {
		return p, lists.List{}, errs.Kindf(ErrNotHeld, "no held post %d", id)
	}
	if err != nil {
		return p, lists.List{}, err
	}
	if p.State != Held {
		return p, lists.List{}, errs.Kindf(ErrNotHeld, "post %d is not held (it was %s)", id, p.State)
	}
	l, err := lists.GetByID(ctx, tx, p.ListID)
	return p, l, err
}

func setState(ctx context.Context, tx *sqlx.Tx, id int64, state, by, note string) error {
	_, err := tx.ExecContext(ctx, `UPDATE moderation SET state = $2, decided_at = now(), decided_by = $3, decision_note = $4 WHERE id = $1`,
		id, state, by, note)
	return err
}

// decideHeld locks held post id (of list listID, when not 0) and runs
// decide on it in one transaction; the post and its list come back for
// the log.
func (s *Service) decideHeld(ctx context.Context, listID, id int64, decide func(tx *sqlx.Tx, p Post, l lists.List) error) (Post, lists.List, error) {
	var p Post
	var l lists.List
	err := db.InTx(ctx, s.o.DB, func(tx *sqlx.Tx) error {
		var err error
		if p, l, err = lockHeld(ctx, tx, id, listID); err != nil {
			return err
		}
		return decide(tx, p, l)
	})
	return p, l, err
}

// Approve archives a held post and queues its delivery, exactly as if the
// policy had accepted it. listID, when not 0, limits the decision to that
// list's posts.
func (s *Service) Approve(ctx context.Context, listID, id int64, by string) (archive.Stored, error) {
	var st archive.Stored
	p, l, err := s.decideHeld(ctx, listID, id, func(tx *sqlx.Tx, p Post, l lists.List) error {
		sum, err := mailmsg.Parse(p.Raw, s.o.Hostname, mailmsg.Limits{MaxHeaderBytes: len(p.Raw) + 1, MaxHeaderFields: 1 << 20, MaxMIMEDepth: 1 << 10})
		if err != nil {
			return fmt.Errorf("held post %d: %w", id, err)
		}
		st, err = archive.Insert(ctx, tx, archive.Post{ListID: l.ID, Raw: p.Raw, Summary: sum, Source: "approved",
			ReceivedAt: s.o.Now(), Queue: true, BySubject: l.SubjectThread})
		if err != nil {
			return err
		}
		return setState(ctx, tx, id, Approved, by, "")
	})
	if err == nil {
		s.o.Logger.Info("held post approved", "event", "held_approved", "list", l.Address, "msg_id", p.MessageID,
			"held_id", id, "article", st.Article, "by", by)
		s.poke(notify.Archive, strconv.FormatInt(st.ListID, 10))
		s.poke(notify.Outbound, "")
	}
	return st, err
}

// Reject refuses a held post and tells its author why (unless the author
// is a robot, who would only answer the notice).
func (s *Service) Reject(ctx context.Context, listID, id int64, reason, by string) error {
	p, l, err := s.decideHeld(ctx, listID, id, func(tx *sqlx.Tx, p Post, l lists.List) error {
		if err := setState(ctx, tx, id, Rejected, by, reason); err != nil {
			return err
		}
		if p.From == "" || p.MailFrom == "" || mailaddr.IsMailerDaemon(p.From) {
			return nil
		}
		text := fmt.Sprintf("Your post to %s was not accepted by the list's moderators.\n\n  Subject: %s\n", l.Address, p.Subject)
		if reason != "" {
			text += "  Reason:  " + mailmsg.Clean(reason, 1000) + "\n"
		}
		m := notice.Message{From: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""), To: p.From,
			Subject: prefixOr(l) + " post not accepted: " + mailmsg.Clean(p.Subject, 200), Text: text}
		return notice.Queue(ctx, tx, l, []string{p.From}, m.Render(s.o.Hostname, s.o.Now()))
	})
	if err == nil {
		s.o.Logger.Info("held post rejected", "event", "held_rejected", "list", l.Address, "msg_id", p.MessageID,
			"held_id", id, "by", by)
		s.poke(notify.Outbound, "")
	}
	return err
}

// Discard drops a held post silently (spam).
func (s *Service) Discard(ctx context.Context, listID, id int64, by string) error {
	p, l, err := s.decideHeld(ctx, listID, id, func(tx *sqlx.Tx, _ Post, _ lists.List) error {
		return setState(ctx, tx, id, Discarded, by, "")
	})
	if err == nil {
		s.o.Logger.Info("held post discarded", "event", "held_discarded", "list", l.Address, "msg_id", p.MessageID,
			"held_id", id, "by", by)
	}
	return err
}
