package bounce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
)

// Scoring is how bounces add up (Mailman's defaults).
type Scoring struct {
	Hard, Soft float64       // weight of one event
	Threshold  float64       // score at which delivery is disabled
	Stale      time.Duration // events older than this no longer count
}

// DefaultScoring: hard 1, soft 0.5, disabled at 5, events expire after 7 days.
var DefaultScoring = Scoring{Hard: 1, Soft: 0.5, Threshold: 5, Stale: 7 * 24 * time.Hour}

// Event is one bounce to record.
type Event struct {
	ListID    int64
	Address   string // the member's address
	Recipient Recipient
	Source    string // dsn or smtp
}

// Outcome says what recording an event did.
type Outcome struct {
	Member   bool    // the address is a member of the list
	Score    float64 // the member's score after the event
	Disabled bool    // this event disabled the member's delivery
}

// Record stores a bounce event for a list member and disables the
// member's delivery when the score reaches the threshold. Bounces about
// addresses that are not members are not stored.
func (sc Scoring) Record(ctx context.Context, q db.Querier, ev Event) (Outcome, error) {
	a, err := mailaddr.Parse(ev.Address)
	if err != nil {
		return Outcome{}, nil
	}
	m, err := members.Get(ctx, q, ev.ListID, a.String())
	if errors.Is(err, members.ErrNotFound) {
		return Outcome{}, nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("bounce: %w", err)
	}
	kind, weight := "soft", sc.Soft
	switch {
	case ev.Recipient.AuthorPolicy():
		kind, weight = "author_policy", 0
	case ev.Recipient.Hard():
		kind, weight = "hard", sc.Hard
	}
	out := Outcome{Member: true}
	err = q.GetContext(ctx, &out.Score, `
		WITH ins AS (INSERT INTO bounce_events (list_id, address_norm, kind, weight, status, diagnostic, source)
		             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING weight)
		SELECT coalesce((SELECT sum(weight) FROM bounce_events
		                  WHERE list_id = $1 AND address_norm = $2 AND at > now() - $8 * interval '1 second'), 0)
		       + (SELECT weight FROM ins)`,
		ev.ListID, a.String(), kind, weight, ev.Recipient.Status, ev.Recipient.Diagnostic, ev.Source, sc.Stale.Seconds())
	if err != nil {
		return out, fmt.Errorf("bounce: %w", err)
	}
	if out.Score < sc.Threshold {
		return out, nil
	}
	if out.Disabled, err = members.Disable(ctx, q, m.ID, "bounces"); err != nil {
		return out, fmt.Errorf("bounce: %w", err)
	}
	return out, nil
}
