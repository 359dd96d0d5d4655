package ingest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notice"
	"github.com/parley-list/parley/internal/policy"
	"github.com/parley-list/parley/internal/tokens"
)

// notifyModerators queues a notice of a held post to the list's
// moderators and owners.
func (s *Service) notifyModerators(ctx context.Context, tx *sqlx.Tx, l lists.List, id int64, p *prepared, d policy.Decision) error {
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
	owner, _ := mailaddr.Parse(mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""))
	raw, err := tokens.Create(ctx, tx, tokens.New{ListID: l.ID, Given: owner.String(), Address: owner,
		Action: tokens.Held, Payload: strconv.FormatInt(id, 10), TTL: 7 * 24 * time.Hour})
	if err != nil {
		return err
	}
	confirm := mailaddr.ServiceAddr(l.Address, mailaddr.KindConfirm, raw)
	n := notice.Message{
		From:    confirm,
		ReplyTo: confirm,
		To:      mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""),
		Subject: fmt.Sprintf("%s post held for approval: %s", prefixOr(l), mailmsg.Clean(p.sum.Subject, 200)),
		Text: fmt.Sprintf("A post to %s is waiting for a moderator.\n\n"+
			"  From:    %s\n  Subject: %s\n  Reason:  %s\n  Held as: %d\n\n"+
			"To approve it, just reply to this message.\n"+
			"To reject it, reply with \"reject\" and a reason on the first line; to drop it silently, reply \"discard\".\n"+
			"On the server: parley held approve|reject|discard %d\n\nThe post is attached.\n",
			l.Address, p.sum.From, p.sum.Subject, d.Reason, id, id),
		Attach: p.raw,
	}
	return notice.Queue(ctx, tx, l, rcpts, n.Render(s.o.Hostname, s.o.Now()))
}

func prefixOr(l lists.List) string {
	if l.SubjectPrefix != "" {
		return l.SubjectPrefix
	}
	return "[" + l.Address + "]"
}
