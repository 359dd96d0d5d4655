package bounce

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-list/parley/internal/db"
)

// Standing is a member address's bounce record on a list, as an owner
// looks at it: the score that counts now, and the last bounce.
type Standing struct {
	AddressNorm string    `db:"address_norm" json:"address"`
	Score       float64   `db:"score" json:"score"`
	Events      int       `db:"events" json:"events"` // all kept, counted or stale
	Last        time.Time `db:"last" json:"last"`
	LastKind    string    `db:"last_kind" json:"last_kind"`
	LastStatus  string    `db:"last_status" json:"last_status"`
	LastText    string    `db:"last_text" json:"last_diagnostic"`
}

// Standings returns the bounce record of every address of a list that
// has one, worst score first.
func Standings(ctx context.Context, q db.Querier, listID int64, sc Scoring) ([]Standing, error) {
	var out []Standing
	err := q.SelectContext(ctx, &out, `
		SELECT address_norm,
		       coalesce(sum(weight) FILTER (WHERE at > now() - make_interval(secs => $2)), 0)::float8 AS score,
		       count(*) AS events,
		       max(at) AS last,
		       (array_agg(kind ORDER BY at DESC))[1] AS last_kind,
		       (array_agg(status ORDER BY at DESC))[1] AS last_status,
		       (array_agg(diagnostic ORDER BY at DESC))[1] AS last_text
		  FROM bounce_events WHERE list_id = $1
		 GROUP BY address_norm
		 ORDER BY score DESC, last DESC`, listID, sc.Stale.Seconds())
	if err != nil {
		return nil, fmt.Errorf("bounce standings: %w", err)
	}
	return out, nil
}

// Events returns a list's bounce events, newest first, at most limit.
func Events(ctx context.Context, q db.Querier, listID int64, limit int) ([]Recorded, error) {
	var out []Recorded
	err := q.SelectContext(ctx, &out, `SELECT address_norm, kind, weight::float8 AS weight, status, diagnostic, source, at
		FROM bounce_events WHERE list_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, listID, limit)
	if err != nil {
		return nil, fmt.Errorf("bounce events: %w", err)
	}
	return out, nil
}

// Recorded is one bounce as kept.
type Recorded struct {
	AddressNorm string    `db:"address_norm" json:"address"`
	Kind        string    `db:"kind" json:"kind"`
	Weight      float64   `db:"weight" json:"weight"`
	Status      string    `db:"status" json:"status"`
	Diagnostic  string    `db:"diagnostic" json:"diagnostic"`
	Source      string    `db:"source" json:"source"`
	At          time.Time `db:"at" json:"at"`
}
