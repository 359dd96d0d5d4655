package digest

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/outqueue"
)

// Causes of an issue.
const (
	CauseSize     = "size"
	CauseSchedule = "schedule"
	CauseManual   = "manual"
)

// Bounds of one issue.
const (
	// MaxPosts bounds the posts of one issue; more waiting make the next.
	MaxPosts = 5000
	// overhead is what an issue needs besides its posts' bytes (headers,
	// the table of contents, the footer), and perPost the table of
	// contents entry and part headers of each post.
	overhead = 64 << 10
	perPost  = 512
)

// Budget is the bytes of posts one issue may hold when messages may be
// maxMessage bytes: half of it, less room for the rest, so that every
// format of the issue fits (the plain digest's quoted-printable text can
// be larger than the posts it came from).
func Budget(maxMessage int64) int64 {
	return max(maxMessage/2-overhead, 4<<10)
}

// Start says where a list's next issue starts, and whether anyone takes
// digests at all: after the last issue, or where the earliest span of a
// digest member starts if that is later (posts before it nobody needs in
// a digest). since is when the earliest of those spans began, the
// schedule's starting point before the first issue.
type Start struct {
	Article int64
	LastCut *time.Time // the last issue's, nil before the first
	Since   time.Time
	Digests bool // some member takes, or took, digests past the last issue
}

// StartOf returns where the list's next issue starts.
func StartOf(ctx context.Context, q db.Querier, listID int64) (Start, error) {
	var s struct {
		Cursor  int64      `db:"cursor"`
		LastCut *time.Time `db:"last_cut"`
		First   *int64     `db:"first"`
		Since   *time.Time `db:"since"`
	}
	err := q.GetContext(ctx, &s, `
		WITH c AS (SELECT coalesce(max(last_article) + 1, 1) AS cursor, max(cut_at) AS last_cut
		             FROM digest_issues WHERE list_id = $1)
		SELECT c.cursor, c.last_cut, min(s.from_article) AS first, min(s.created_at) AS since
		  FROM c LEFT JOIN digest_spans s ON s.list_id = $1 AND (s.until_article IS NULL OR s.until_article > c.cursor)
		 GROUP BY c.cursor, c.last_cut`, listID)
	if err != nil {
		return Start{}, fmt.Errorf("digest start: %w", err)
	}
	out := Start{Article: s.Cursor, LastCut: s.LastCut, Digests: s.First != nil}
	if s.First != nil {
		out.Article = max(out.Article, *s.First)
		out.Since = *s.Since
	}
	return out, nil
}

// CutOptions say how to cut an issue.
type CutOptions struct {
	Cause      string
	Now        time.Time
	MaxMessage int64 // the largest message the list may send (Budget)
}

// Cutting is what Cut did.
type Cutting struct {
	Issue Issue
	Cut   bool // false: nothing to cut, or another process is cutting
	More  bool // posts were left for the next issue (the limits of one)
}

// Cut cuts the list's next issue, if there is anything for it, and queues
// it: the issue, its outbound job and the dropping of digest spans no
// issue needs any more commit together.
func Cut(ctx context.Context, d *sqlx.DB, listID int64, o CutOptions) (Cutting, error) {
	var c Cutting
	err := db.InTx(ctx, d, func(tx *sqlx.Tx) error {
		var locked bool
		// One cutter per list; the unique (list, first article) is what
		// makes two cuts of one issue impossible, this only saves the work.
		err := tx.GetContext(ctx, &locked, `SELECT pg_try_advisory_xact_lock(hashtext('parley.digest'), ($1 % 2147483647)::int)`, listID)
		if err != nil || !locked {
			return err
		}
		c, err = cutTx(ctx, tx, listID, o)
		return err
	})
	if _, dup := db.IsUniqueViolation(err); dup {
		return Cutting{}, nil // another process cut it first
	}
	if err != nil {
		return Cutting{}, err
	}
	return c, nil
}

func cutTx(ctx context.Context, tx *sqlx.Tx, listID int64, o CutOptions) (Cutting, error) {
	l, err := lists.GetByID(ctx, tx, listID)
	if err != nil {
		return Cutting{}, err
	}
	st, err := StartOf(ctx, tx, listID)
	if err != nil || !st.Digests {
		return Cutting{}, err
	}
	es, err := archive.Distributed(ctx, tx, listID, st.Article, MaxPosts+1)
	if err != nil || len(es) == 0 {
		return Cutting{}, err
	}
	more := len(es) > MaxPosts
	es = es[:min(len(es), MaxPosts)]
	in, listed := choose(es, Budget(o.MaxMessage))
	more = more || len(in) < len(es)
	var bytes int64
	for _, e := range in {
		bytes += e.Size
	}
	last, err := Issues(ctx, tx, listID, 1)
	if err != nil {
		return Cutting{}, err
	}
	vol, num := nextNumber(last, o.Now, l.Digest.Location(), l.Digest.Volume)
	var is Issue
	err = tx.GetContext(ctx, &is, `
		INSERT INTO digest_issues (list_id, volume, number, first_article, last_article, posts, bytes, listed, cause, cut_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+issueCols,
		listID, vol, num, st.Article, in[len(in)-1].Article, len(in), bytes, pq.Int64Array(append([]int64{}, listed...)), o.Cause, o.Now)
	if err != nil {
		return Cutting{}, fmt.Errorf("cut issue: %w", err)
	}
	if err := outqueue.Digest(ctx, tx, listID, is.ID); err != nil {
		return Cutting{}, err
	}
	return Cutting{Issue: is, Cut: true, More: more}, forgetSpans(ctx, tx, listID, st.Article)
}

// forgetSpans drops the digest spans that end before every article whose
// delivery is still to be expanded: before the issue just cut, before any
// earlier issue still queued, before any post still queued (whose regular
// copies go by the spans too).
func forgetSpans(ctx context.Context, tx *sqlx.Tx, listID, start int64) error {
	var before int64
	err := tx.GetContext(ctx, &before, `
		SELECT least($2,
		       (SELECT min(i.first_article) FROM outbound o JOIN digest_issues i ON i.id = o.digest
		         WHERE o.list_id = $1 AND o.state = 'pending'),
		       (SELECT min(m.article) FROM outbound o JOIN messages m ON m.id = o.message
		         WHERE o.list_id = $1 AND o.state = 'pending'))`, listID, start)
	if err != nil {
		return err
	}
	return members.ForgetSpans(ctx, tx, listID, before)
}

// choose takes posts in article order until the budget is spent. A post
// larger than the budget on its own is listed (with its archive link)
// rather than inlined, so it never holds the digest up; at least one post
// is always taken.
func choose(es []archive.Entry, budget int64) (in []archive.Entry, listed []int64) {
	var bytes int64
	for _, e := range es {
		if e.Size+perPost > budget {
			in, listed = append(in, e), append(listed, e.Article)
			bytes += perPost
			continue
		}
		if len(in) > 0 && bytes+e.Size+perPost > budget {
			break
		}
		in = append(in, e)
		bytes += e.Size + perPost
	}
	return in, listed
}

// nextNumber numbers the issue after last (nil: the first ever): the
// next in its volume, or issue 1 of the next volume when the volume's
// period (a year or a month, in the list's time zone) has turned.
func nextNumber(last []Issue, now time.Time, loc *time.Location, period string) (volume, number int) {
	if len(last) == 0 {
		return 1, 1
	}
	prev := last[0]
	if periodOf(prev.CutAt, loc, period) != periodOf(now, loc, period) {
		return prev.Volume + 1, 1
	}
	return prev.Volume, prev.Number + 1
}

func periodOf(t time.Time, loc *time.Location, period string) string {
	t = t.In(loc)
	switch period {
	case "yearly":
		return t.Format("2006")
	case "monthly":
		return t.Format("2006-01")
	}
	return ""
}
