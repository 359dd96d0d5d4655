// Package stats reports the figures a list owner gives their community:
// posts and posters, members who joined and left, posts held and
// approved, month by month. It owns no table: it reads, read-only and in
// aggregate, the archive's messages, the moderation records and
// members' member_events (docs/architecture.md lists these reads).
package stats

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-list/parley/internal/db"
)

// Month is one calendar month (UTC) of a list.
type Month struct {
	Month    time.Time `db:"month" json:"month"`
	Posts    int       `db:"posts" json:"posts"`     // posts archived (imports left out)
	Posters  int       `db:"posters" json:"posters"` // different authors of those posts
	Joined   int       `db:"joined" json:"joined"`
	Left     int       `db:"left_" json:"left"`
	Held     int       `db:"held" json:"held"` // posts held for a moderator
	Approved int       `db:"approved" json:"approved"`
}

// Months returns a list's figures for the months from since (its month)
// to now, oldest first, a row for every month even when nothing happened.
func Months(ctx context.Context, q db.Querier, listID int64, since time.Time) ([]Month, error) {
	var out []Month
	err := q.SelectContext(ctx, &out, `
		WITH months AS (
		    SELECT generate_series(date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC'),
		                           date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') AS month),
		posts AS (
		    SELECT date_trunc('month', received_at AT TIME ZONE 'UTC') AS month, count(*) AS posts,
		           count(DISTINCT lower(from_addr)) AS posters
		      FROM messages WHERE list_id = $1 AND source <> 'import' AND received_at >= date_trunc('month', $2::timestamptz)
		     GROUP BY 1),
		members AS (
		    SELECT date_trunc('month', at AT TIME ZONE 'UTC') AS month,
		           count(*) FILTER (WHERE event = 'joined') AS joined, count(*) FILTER (WHERE event = 'left') AS left_
		      FROM member_events WHERE list_id = $1 AND at >= date_trunc('month', $2::timestamptz)
		     GROUP BY 1),
		moderated AS (
		    SELECT date_trunc('month', received_at AT TIME ZONE 'UTC') AS month,
		           count(*) FILTER (WHERE state = 'held' OR decided_by IS NOT NULL) AS held,
		           count(*) FILTER (WHERE state = 'approved') AS approved
		      FROM moderation WHERE list_id = $1 AND received_at >= date_trunc('month', $2::timestamptz)
		     GROUP BY 1)
		SELECT m.month AT TIME ZONE 'UTC' AS month, coalesce(p.posts, 0) AS posts, coalesce(p.posters, 0) AS posters,
		       coalesce(x.joined, 0) AS joined, coalesce(x.left_, 0) AS left_,
		       coalesce(d.held, 0) AS held, coalesce(d.approved, 0) AS approved
		  FROM months m LEFT JOIN posts p USING (month) LEFT JOIN members x USING (month) LEFT JOIN moderated d USING (month)
		 ORDER BY m.month`, listID, since)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return out, nil
}

// Posters returns how many different authors posted to the list between
// since and now (imports left out): the "active posters" of a period,
// which the months' counts cannot add up to.
func Posters(ctx context.Context, q db.Querier, listID int64, since time.Time) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(DISTINCT lower(from_addr)) FROM messages
		WHERE list_id = $1 AND source <> 'import' AND received_at >= date_trunc('month', $2::timestamptz)`, listID, since)
	return n, err
}
