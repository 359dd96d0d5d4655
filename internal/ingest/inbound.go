package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

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
			aside, ferr := InboundFailed(context.WithoutCancel(ctx), q, claimed, err)
			if ferr != nil {
				return n, ferr
			}
			if aside {
				log.Error("stored mail set aside after repeated failures", "event", "inbound_set_aside", "inbound_id", claimed, "err", err)
			} else {
				log.Warn("stored mail failed, will be tried again", "event", "inbound_failed", "inbound_id", claimed, "err", err)
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

// Inbound is one stored message to a list's service address.
type Inbound struct {
	ID       int64  `db:"id"`
	ListID   int64  `db:"list_id"`
	Kind     string `db:"kind"`
	Detail   string `db:"detail"`
	MailFrom string `db:"mail_from"`
	Raw      []byte `db:"raw"`
}

// ClaimInbound handles the oldest unprocessed stored message, bounces or
// everything else (command mail), in its own transaction: handle runs in
// it and the message is marked done with it, and wake runs after the
// commit when handle queued mail. It returns the claimed id (0: none
// left), also when handle failed, so DrainInbound can set it aside.
// SKIP LOCKED lets several processes drain together.
func ClaimInbound(ctx context.Context, d *sqlx.DB, bounces bool, handle func(context.Context, *sqlx.Tx, Inbound) (bool, error), wake func()) (int64, error) {
	kinds := `kind <> 'bounce'`
	if bounces {
		kinds = `kind = 'bounce'`
	}
	var claimed int64
	queued := false
	err := db.InTx(ctx, d, func(tx *sqlx.Tx) error {
		var in Inbound
		err := tx.GetContext(ctx, &in, `SELECT id, list_id, kind, detail, mail_from, raw FROM inbound
			WHERE `+kinds+` AND state = 'new' ORDER BY attempts, id LIMIT 1 FOR UPDATE SKIP LOCKED`)
		if db.IsNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		claimed = in.ID
		if queued, err = handle(ctx, tx, in); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE inbound SET state = 'done' WHERE id = $1`, in.ID)
		return err
	})
	if err == nil && queued && wake != nil {
		wake()
	}
	return claimed, err
}
