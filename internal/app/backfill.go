package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/parley-list/parley/internal/archive"
)

// startBackfill computes, in the background, the derived data that posts
// archived by an older parley lack (their search text), a batch at a time,
// until none is left; it costs one indexed query when there is nothing to
// do. Several processes may run it at once: each batch is an idempotent
// update.
func startBackfill(g *group, d *Database, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	g.add("backfill", func() error {
		total := 0
		for ctx.Err() == nil {
			qctx, qcancel := context.WithTimeout(ctx, time.Minute)
			n, err := archive.FillSearchText(qctx, d.DB, 200)
			qcancel()
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("filling in the search text of older posts failed; parley archive rethread does it too",
						"event", "backfill_failed", "err", err)
				}
				return nil
			}
			if n == 0 {
				break
			}
			total += n
		}
		if total > 0 {
			log.Info("search text of older posts filled in", "event", "backfill_done", "posts", total)
		}
		return nil
	}, func(context.Context) error { cancel(); return nil })
}
