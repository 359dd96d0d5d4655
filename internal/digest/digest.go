// Package digest owns digest issues: deciding when a list's next issue is
// due (by size or by its schedule), cutting it (a range of the list's
// articles, numbered by volume and issue as Mailman numbers them,
// recorded in digest_issues and queued as one 'digest' job through the
// outbound queue), and rendering an issue in each format members can
// choose: MIME (RFC 2046 multipart/digest), plain text (RFC 1153) and a
// summary of one entry per thread.
//
// An issue is a range of article numbers, not a copy of the posts, so it
// can be rendered again at any time and is the same each time; the posts
// stay in the archive. Issues follow each other without gap or overlap:
// each starts after the last one ended (or where the earliest digest
// member's span starts, internal/members' digest_spans), and
// (list, first article) is unique, so two processes can never cut the
// same issue. Which members get an issue, and which of its articles each
// gets, is the outbound queue's expansion (internal/outqueue), from the
// digest spans.
package digest

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
)

// Issue is one cut digest issue.
type Issue struct {
	ID     int64         `db:"id"`
	ListID int64         `db:"list_id"`
	Volume int           `db:"volume"`
	Number int           `db:"number"`
	First  int64         `db:"first_article"`
	Last   int64         `db:"last_article"`
	Posts  int           `db:"posts"`
	Bytes  int64         `db:"bytes"`
	Listed pq.Int64Array `db:"listed"` // too large to inline: listed with a link
	Cause  string        `db:"cause"`  // size, schedule or manual
	CutAt  time.Time     `db:"cut_at"`
}

// ErrNoIssue says there is no such issue.
var ErrNoIssue = fmt.Errorf("no such digest issue")

const issueCols = `id, list_id, volume, number, first_article, last_article, posts, bytes, listed, cause, cut_at`

// Get returns one issue by id.
func Get(ctx context.Context, q db.Querier, id int64) (Issue, error) {
	var is Issue
	err := q.GetContext(ctx, &is, `SELECT `+issueCols+` FROM digest_issues WHERE id = $1`, id)
	if db.IsNoRows(err) {
		return is, errs.Kindf(ErrNoIssue, "no digest issue %d", id)
	}
	return is, err
}

// Find returns a list's issue by volume and number.
func Find(ctx context.Context, q db.Querier, listID int64, volume, number int) (Issue, error) {
	var is Issue
	err := q.GetContext(ctx, &is, `SELECT `+issueCols+` FROM digest_issues
		WHERE list_id = $1 AND volume = $2 AND number = $3`, listID, volume, number)
	if db.IsNoRows(err) {
		return is, errs.Kindf(ErrNoIssue, "no issue %d of volume %d", number, volume)
	}
	return is, err
}

// Issues returns a list's issues, newest first, at most limit.
func Issues(ctx context.Context, q db.Querier, listID int64, limit int) ([]Issue, error) {
	var out []Issue
	err := q.SelectContext(ctx, &out, `SELECT `+issueCols+` FROM digest_issues
		WHERE list_id = $1 ORDER BY first_article DESC LIMIT $2`, listID, limit)
	return out, err
}
