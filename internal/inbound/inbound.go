// Package inbound owns the inbound work queue: mail to a list's service
// addresses (-request, -join, -leave, -confirm, -owner, -bounces) that
// intake stores and the command and bounce processors handle later (the
// inbound table).
//
// Intake stores a message in its own transaction, so the sender's 250
// means it is kept; a processor claims one message at a time with FOR
// UPDATE SKIP LOCKED, handles it and marks it done in one transaction, so
// any number of parley processes drain the queue together and a crash
// mid-way leaves the message to be handled again. A message that keeps
// failing is set aside after a few attempts, with its bytes kept for
// inspection, so it cannot block the ones behind it.
package inbound

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/mailmsg"
)

// Message is one stored message to a list's service address.
type Message struct {
	ID       int64  `db:"id"`
	ListID   int64  `db:"list_id"`
	Kind     string `db:"kind"`   // request, join, leave, confirm, owner, bounce (mailaddr.Kind)
	Detail   string `db:"detail"` // the +TOKEN or VERP part of the address
	MailFrom string `db:"mail_from"`
	Raw      []byte `db:"raw"`
}

// New is a message to store.
type New struct {
	ListID     int64
	Kind       string
	Rcpt       string // the address it was sent to, normalised
	Detail     string
	MailFrom   string
	ContentKey []byte // a retry of the same message is stored once
	Raw        []byte
}

// Store keeps a message for its processor in the caller's transaction. The
// same message again (same list, kind, recipient and content) is stored
// once.
func Store(ctx context.Context, q db.Querier, n New) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO inbound (list_id, kind, rcpt, detail, mail_from, content_key, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (list_id, kind, rcpt, content_key) DO NOTHING`,
		n.ListID, n.Kind, n.Rcpt, n.Detail, n.MailFrom, n.ContentKey, n.Raw)
	if err != nil {
		return fmt.Errorf("store %s mail: %w", n.Kind, err)
	}
	return nil
}

// Queue says which processor's messages Claim takes.
type Queue bool

// The two processors' queues.
const (
	Commands Queue = false // everything but bounces: internal/commands
	Bounces  Queue = true  // -bounces mail: internal/bounce
)

// Handler handles one claimed message in the claiming transaction and
// reports whether it queued outbound mail.
type Handler func(ctx context.Context, tx *sqlx.Tx, m Message) (queued bool, err error)

// Claim handles the oldest unprocessed message of queue in its own
// transaction: handle runs in it and the message is marked done with it,
// and wake runs after the commit when handle queued mail. It returns the
// claimed id (0: none left), also when handle failed, so Drain can set it
// aside. SKIP LOCKED lets several processes drain together.
func Claim(ctx context.Context, d *sqlx.DB, queue Queue, handle Handler, wake func()) (int64, error) {
	kinds := `kind <> 'bounce'`
	if queue == Bounces {
		kinds = `kind = 'bounce'`
	}
	var claimed int64
	queued := false
	err := db.InTx(ctx, d, func(tx *sqlx.Tx) error {
		var m Message
		err := tx.GetContext(ctx, &m, `SELECT id, list_id, kind, detail, mail_from, raw FROM inbound
			WHERE `+kinds+` AND state = 'new' ORDER BY attempts, id LIMIT 1 FOR UPDATE SKIP LOCKED`)
		if db.IsNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		claimed = m.ID
		if queued, err = handle(ctx, tx, m); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE inbound SET state = 'done' WHERE id = $1`, m.ID)
		return err
	})
	if err == nil && queued && wake != nil {
		wake()
	}
	return claimed, err
}

// maxAttempts is how often a stored message is tried before it is set
// aside.
const maxAttempts = 5

// failed records a failed attempt at a message; after maxAttempts it is
// set aside ('failed'). It reports whether the message is now set aside.
func failed(ctx context.Context, q db.Querier, id int64, cause error) (bool, error) {
	var state string
	err := q.GetContext(ctx, &state, `UPDATE inbound SET attempts = attempts + 1, last_error = $2,
		state = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE state END WHERE id = $1 RETURNING state`,
		id, mailmsg.Clean(cause.Error(), 1000), maxAttempts)
	return state == "failed", err
}

// ClaimOne handles one message (normally Claim with a processor's
// handler) and returns its id, 0 when there was none.
type ClaimOne func(ctx context.Context) (int64, error)

// Drain calls one until no message is left and returns how many it
// handled. A message that fails is recorded (and set aside after a few
// tries) and the others go on; only a failure to claim or to record stops
// the drain.
func Drain(ctx context.Context, q db.Querier, log *slog.Logger, one ClaimOne) (int, error) {
	n := 0
	for {
		claimed, err := one(ctx)
		if err != nil && claimed != 0 && ctx.Err() == nil {
			aside, ferr := failed(context.WithoutCancel(ctx), q, claimed, err)
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

// Run drains every interval until ctx ends; event names the log line of a
// failed drain.
func Run(ctx context.Context, interval time.Duration, log *slog.Logger, event string, drain func(context.Context) (int, error)) error {
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

// Collector reports how much stored mail waits, read from the database
// at each scrape.
type Collector struct {
	db      *sqlx.DB
	timeout time.Duration
	waiting *prometheus.Desc
}

// NewCollector returns a collector that queries db with timeout.
func NewCollector(db *sqlx.DB, timeout time.Duration) *Collector {
	return &Collector{db: db, timeout: timeout,
		waiting: prometheus.NewDesc("parley_inbound_waiting", "Command mail and bounces stored and not yet processed.", nil, nil)}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.waiting }

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var n int64
	if err := c.db.GetContext(ctx, &n, `SELECT count(*) FROM inbound WHERE state = 'new'`); err != nil {
		ch <- prometheus.NewInvalidMetric(c.waiting, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(n))
}
