package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/parley-list/parley/internal/db"
)

// ProcessOne handles the oldest unprocessed stored message of some kind in
// its own transaction and returns its inbound id (0 when there was none).
type ProcessOne func(ctx context.Context) (int64, error)

// DrainInbound calls one until no message is left and returns how many it
// handled. A message that fails is recorded with InboundFailed (set aside
// after a few tries) and the others go on; only a failure to claim or to
// record stops the drain.
func DrainInbound(ctx context.Context, q db.Querier, log *slog.Logger, one ProcessOne) (int, error) {
	n := 0
	for {
		claimed, err := one(ctx)
		if err != nil && claimed != 0 && ctx.Err() == nil {
			log.Warn("stored mail failed", "event", "inbound_failed", "inbound_id", claimed, "err", err)
			if ferr := InboundFailed(context.WithoutCancel(ctx), q, claimed, err); ferr != nil {
				return n, ferr
			}
			n++
			continue
		}
		if err != nil || claimed == 0 {
			return n, err
		}
		n++
	}
}

// RunInbound drains every interval until ctx ends; event names the log
// line of a failed drain.
func RunInbound(ctx context.Context, interval time.Duration, log *slog.Logger, event string, drain func(context.Context) (int, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := drain(ctx); err != nil && ctx.Err() == nil {
			log.Warn("processing stored mail failed", "event", event, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
