package digest

import (
	"context"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/lists"
)

// Scheduler cuts every list's issues when they are due. Every parley
// process runs one; Cut keeps them from cutting an issue twice.
type Scheduler struct {
	DB         *sqlx.DB
	Log        *slog.Logger
	MaxMessage int64         // the server's message limit (a list may set a smaller one)
	Every      time.Duration // how often to look (default a minute)
	Now        func() time.Time
	Queued     func() // wakes the delivery workers after a cut
}

// maxCutsPerTick bounds the issues one list gets in one look, when a
// backlog is larger than one issue may be.
const maxCutsPerTick = 20

// Run looks for due issues until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	every := s.Every
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("digest round failed", "event", "digest_error", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick cuts the issues due now and returns how many it cut.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	var ids []int64
	if err := s.DB.SelectContext(ctx, &ids, `SELECT DISTINCT list_id FROM digest_spans ORDER BY list_id`); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		c, err := s.tickList(ctx, id)
		n += c
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Scheduler) tickList(ctx context.Context, id int64) (int, error) {
	l, err := lists.GetByID(ctx, s.DB, id)
	if err != nil {
		return 0, err
	}
	n, more := 0, false
	var cause string
	for n < maxCutsPerTick {
		now := s.now()
		if !more { // an issue cut short by its limits is followed at once
			if cause, err = Due(ctx, s.DB, l, now); err != nil || cause == "" {
				return n, err
			}
		}
		c, err := Cut(ctx, s.DB, l.ID, CutOptions{Cause: cause, Now: now, MaxMessage: s.limit(l)})
		if err != nil || !c.Cut {
			return n, err
		}
		n, more = n+1, c.More
		is := c.Issue
		s.Log.Info("digest issue cut", "event", "digest_cut", "list", l.Address, "volume", is.Volume,
			"issue", is.Number, "first", is.First, "last", is.Last, "posts", is.Posts, "cause", cause)
		if s.Queued != nil {
			s.Queued()
		}
	}
	return n, nil
}

// Limit is the largest message a list may send: its own limit, or the
// server's.
func Limit(l lists.List, server int64) int64 {
	if l.MaxMessage > 0 && (server <= 0 || l.MaxMessage < server) {
		return l.MaxMessage
	}
	if server <= 0 {
		return 32 << 20
	}
	return server
}

func (s *Scheduler) limit(l lists.List) int64 { return Limit(l, s.MaxMessage) }

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Due says whether the list's next issue is due at now, and why: the
// posts waiting for it reach the size threshold, or a scheduled time has
// passed since the last issue (or since the first member chose a
// digest). It is "" when nothing waits: an issue is never empty.
func Due(ctx context.Context, q db.Querier, l lists.List, now time.Time) (string, error) {
	st, err := StartOf(ctx, q, l.ID)
	if err != nil || !st.Digests {
		return "", err
	}
	posts, bytes, err := archive.Pending(ctx, q, l.ID, st.Article)
	if err != nil || posts == 0 {
		return "", err
	}
	if l.Digest.Threshold > 0 && bytes >= l.Digest.Threshold {
		return CauseSize, nil
	}
	since := st.Since
	if st.LastCut != nil {
		since = *st.LastCut
	}
	if at := l.Digest.Schedule.Last(now, l.Digest.Location()); !at.IsZero() && at.After(since) {
		return CauseSchedule, nil
	}
	return "", nil
}
