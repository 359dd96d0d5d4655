package ingest

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/notice"
	"github.com/parley-list/parley/internal/policy"
)

// notifyModerators queues a notice of a held post to the list's
// moderators and owners.
func (s *Service) notifyModerators(ctx context.Context, tx *sqlx.Tx, l lists.List, id int64, p *prepared, d policy.Decision) error {
	rcpts, err := notice.Owners(ctx, tx, l.ID)
	if err != nil {
		return fmt.Errorf("moderators: %w", err)
	}
	if len(rcpts) == 0 {
		s.o.Logger.Warn("held post but the list has no owner or moderator to tell", "event", "no_moderator", "list", l.Address, "held_id", id)
		return nil
	}
	n := notice.Message{
		From:    notice.ServiceAddr(l, "-owner"),
		To:      notice.ServiceAddr(l, "-owner"),
		Subject: fmt.Sprintf("%s post held for approval: %s", prefixOr(l), mailmsg.Clean(p.sum.Subject, 200)),
		Text: fmt.Sprintf("A post to %s is waiting for a moderator.\n\n"+
			"  From:    %s\n  Subject: %s\n  Reason:  %s\n  Held as: %d\n\n"+
			"To approve it:  parley held approve %d\n"+
			"To reject it:   parley held reject %d --reason \"...\"\n"+
			"To discard it:  parley held discard %d\n\nThe post is attached.\n",
			l.Address, p.sum.From, p.sum.Subject, d.Reason, id, id, id, id),
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
