package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/notice"
	"github.com/parley-list/parley/internal/notify"
)

// ErrNotHeld says a moderation record is not (or no longer) waiting.
var ErrNotHeld = errors.New("not held")

// Held is a post kept for moderation (or a record of a discarded one).
type Held struct {
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

const heldCols = `id, list_id, state, rule, reason, mail_from, from_addr, subject, message_id, received_at, raw`

// HeldPosts returns a list's posts waiting for a moderator, oldest first.
func HeldPosts(ctx context.Context, q db.Querier, listID int64) ([]Held, error) {
	var hs []Held
	err := q.SelectContext(ctx, &hs, `SELECT `+heldCols+` FROM moderation WHERE list_id = $1 AND state = 'held' ORDER BY id`, listID)
	return hs, err
}

// GetHeld returns one moderation record.
func GetHeld(ctx context.Context, q db.Querier, id int64) (Held, error) {
	var h Held
	err := q.GetContext(ctx, &h, `SELECT `+heldCols+` FROM moderation WHERE id = $1`, id)
	if db.IsNoRows(err) {
		return Held{}, errs.Kindf(ErrNotHeld, "no held post %d", id)
	}
	return h, err
}

// lockHeld locks a record that must still be held. listID, when not 0,
// must be the record's list: a moderator of one list cannot decide on
// another list's posts.
func lockHeld(ctx context.Context, tx *sqlx.Tx, id, listID int64) (Held, lists.List, error) {
	var h Held
	err := tx.GetContext(ctx, &h, `SELECT `+heldCols+` FROM moderation WHERE id = $1 AND ($2 = 0 OR list_id = $2) FOR UPDATE`, id, listID)
	if db.IsNoRows(err) {
		return h, lists.List{}, errs.Kindf(ErrNotHeld, "no held post %d", id)
	}
	if err != nil {
		return h, lists.List{}, err
	}
	if h.State != "held" {
		return h, lists.List{}, errs.Kindf(ErrNotHeld, "post %d is not held (it was %s)", id, h.State)
	}
	l, err := lists.GetByID(ctx, tx, h.ListID)
	return h, l, err
}

func decide(ctx context.Context, tx *sqlx.Tx, id int64, state, by, note string) error {
	_, err := tx.ExecContext(ctx, `UPDATE moderation SET state = $2, decided_at = now(), decided_by = $3, decision_note = $4 WHERE id = $1`,
		id, state, by, note)
	return err
}

// Approve archives a held post and queues its delivery, exactly as if the
// policy had accepted it.
// listID, when not 0, limits the decision to that list's posts.
func (s *Service) Approve(ctx context.Context, listID, id int64, by string) (archive.Stored, error) {
	var st archive.Stored
	var h Held
	var l lists.List
	err := db.InTx(ctx, s.o.DB, func(tx *sqlx.Tx) error {
		var err error
		if h, l, err = lockHeld(ctx, tx, id, listID); err != nil {
			return err
		}
		sum, err := mailmsg.Parse(h.Raw, s.o.Hostname, mailmsg.Limits{MaxHeaderBytes: len(h.Raw) + 1, MaxHeaderFields: 1 << 20, MaxMIMEDepth: 1 << 10})
		if err != nil {
			return fmt.Errorf("held post %d: %w", id, err)
		}
		if st, err = s.archive(ctx, tx, l, &prepared{raw: h.Raw, sum: sum}, "approved"); err != nil {
			return err
		}
		return decide(ctx, tx, id, "approved", by, "")
	})
	if err == nil {
		s.o.Logger.Info("held post approved", "event", "held_approved", "list", l.Address, "msg_id", h.MessageID,
			"held_id", id, "article", st.Article, "by", by)
		s.poke(notify.Archive, strconv.FormatInt(st.ListID, 10))
		s.poke(notify.Outbound, "")
	}
	return st, err
}

// RejectHeld refuses a held post and tells its author why (unless the
// author is a robot, who would only answer the notice).
func (s *Service) RejectHeld(ctx context.Context, listID, id int64, reason, by string) error {
	var h Held
	var l lists.List
	err := db.InTx(ctx, s.o.DB, func(tx *sqlx.Tx) error {
		var err error
		if h, l, err = lockHeld(ctx, tx, id, listID); err != nil {
			return err
		}
		if err := decide(ctx, tx, id, "rejected", by, reason); err != nil {
			return err
		}
		if h.From == "" || h.MailFrom == "" || mailaddr.IsMailerDaemon(h.From) {
			return nil
		}
		text := fmt.Sprintf("Your post to %s was not accepted by the list's moderators.\n\n  Subject: %s\n", l.Address, h.Subject)
		if reason != "" {
			text += "  Reason:  " + mailmsg.Clean(reason, 1000) + "\n"
		}
		n := notice.Message{From: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""), To: h.From,
			Subject: prefixOr(l) + " post not accepted: " + mailmsg.Clean(h.Subject, 200), Text: text}
		return notice.Queue(ctx, tx, l, []string{h.From}, n.Render(s.o.Hostname, s.o.Now()))
	})
	if err == nil {
		s.o.Logger.Info("held post rejected", "event", "held_rejected", "list", l.Address, "msg_id", h.MessageID,
			"held_id", id, "by", by)
		s.poke(notify.Outbound, "")
	}
	return err
}

// DiscardHeld drops a held post silently (spam).
func (s *Service) DiscardHeld(ctx context.Context, listID, id int64, by string) error {
	var h Held
	var l lists.List
	err := db.InTx(ctx, s.o.DB, func(tx *sqlx.Tx) error {
		var err error
		if h, l, err = lockHeld(ctx, tx, id, listID); err != nil {
			return err
		}
		return decide(ctx, tx, id, "discarded", by, "")
	})
	if err == nil {
		s.o.Logger.Info("held post discarded", "event", "held_discarded", "list", l.Address, "msg_id", h.MessageID,
			"held_id", id, "by", by)
	}
	return err
}
