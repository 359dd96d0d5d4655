// Package outqueue owns the outbound queue in PostgreSQL (the outbound
// and deliveries tables): queueing a job (send this archived post to the
// list's members; send this notice to these people), turning a job into
// one delivery row per recipient, and claiming, completing, rescheduling
// and failing those rows.
//
// It is the queue's only writer: notices are queued with Notice, digest
// issues with Digest (in the transaction that cuts the issue), and a
// post's job with the SQL function outbound_post
// (migrations/functions/outbound_post.sql), which archive_store calls so
// that a post and its delivery commit together in one statement.
//
// Rows are claimed with a lease (FOR UPDATE SKIP LOCKED, then state
// 'sending' until lease_until), so any number of workers in any number of
// processes share the queue without sending a copy twice, and the copies a
// crashed worker held come back to 'pending' when the lease runs out.
package outqueue

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
)

// Notice queues a complete message (body) to explicit recipients, with
// mailFrom as its return path, in the caller's transaction.
func Notice(ctx context.Context, q db.Querier, listID int64, rcpts []string, mailFrom string, body []byte) error {
	_, err := q.ExecContext(ctx, `INSERT INTO outbound (kind, list_id, rcpts, mail_from, body) VALUES ('notice', $1, $2, $3, $4)`,
		listID, pq.StringArray(rcpts), mailFrom, body)
	if err != nil {
		return fmt.Errorf("queue notice: %w", err)
	}
	return nil
}

// Digest queues a digest issue (digest_issues.id) to the list's members
// who take digests, in the caller's transaction.
func Digest(ctx context.Context, q db.Querier, listID, issue int64) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO outbound (kind, list_id, digest) VALUES ('digest', $1, $2)`, listID, issue); err != nil {
		return fmt.Errorf("queue digest: %w", err)
	}
	return nil
}

// Job is what an outbound job says to send.
type Job struct {
	ID       int64  `db:"id"`
	Kind     string `db:"kind"` // post, notice or digest
	ListID   int64  `db:"list_id"`
	Message  *int64 `db:"message"` // the archived post (messages.id) of a post job
	Digest   *int64 `db:"digest"`  // the issue (digest_issues.id) of a digest job
	MailFrom string `db:"mail_from"`
	Body     []byte `db:"body"` // the notice's complete message
}

// GetJob returns one job.
func GetJob(ctx context.Context, q db.Querier, id int64) (Job, error) {
	var j Job
	err := q.GetContext(ctx, &j, `SELECT id, kind, list_id, message, digest, mail_from, body FROM outbound WHERE id = $1`, id)
	return j, err
}

// The expansion of each kind of job into copies.
const (
	// A post goes to every active member who takes mail, except a poster
	// who chose not to get their own posts back, and except members
	// taking this article in a digest: a digest span of theirs holds it.
	expandPost = `INSERT INTO deliveries (job, list_id, rcpt, domain)
		SELECT $1, $2, m.address, split_part(m.address_norm, '@', 2)
		  FROM members m, outbound o JOIN messages msg ON msg.id = o.message
		 WHERE o.id = $1 AND m.list_id = $2 AND m.status = 'active' AND m.delivery <> 'nomail'
		   AND (m.self_copy OR m.address_norm <> lower(msg.from_addr))
		   AND NOT EXISTS (SELECT 1 FROM digest_spans s WHERE s.member_id = m.id AND s.from_article <= msg.article
		                      AND (s.until_article IS NULL OR s.until_article > msg.article))
		ON CONFLICT (job, rcpt) DO NOTHING`
	// A notice goes to the recipients it names.
	expandNotice = `INSERT INTO deliveries (job, list_id, rcpt, domain)
		SELECT $1, $2, r, lower(split_part(r, '@', 2)) FROM outbound, unnest(rcpts) AS r WHERE outbound.id = $1
		ON CONFLICT (job, rcpt) DO NOTHING`
	// A digest issue goes to every active member who takes mail and
	// whose digest spans meet the issue's range, with the part of the
	// range they hold, in the format of their latest span: the variant
	// internal/digest renders ("FORMAT {[from,until),…}"). A member whose
	// part holds only imported articles gets nothing.
	expandDigest = `INSERT INTO deliveries (job, list_id, rcpt, domain, variant)
		SELECT $1, $2, m.address, split_part(m.address_norm, '@', 2), x.format || ' ' || x.parts::text
		  FROM outbound o JOIN digest_issues i ON i.id = o.digest
		  JOIN members m ON m.list_id = $2 AND m.status = 'active' AND m.delivery <> 'nomail'
		  CROSS JOIN LATERAL (
		        SELECT (array_agg(s.format ORDER BY s.from_article DESC))[1] AS format,
		               range_agg(int8range(greatest(s.from_article, i.first_article),
		                                   least(coalesce(s.until_article, i.last_article + 1), i.last_article + 1))) AS parts
		          FROM digest_spans s
		         WHERE s.member_id = m.id AND s.from_article <= i.last_article
		           AND (s.until_article IS NULL OR s.until_article > i.first_article)) x
		 WHERE o.id = $1 AND x.parts IS NOT NULL
		   AND (x.parts = int8multirange(int8range(i.first_article, i.last_article + 1))
		        OR EXISTS (SELECT 1 FROM messages p WHERE p.list_id = $2
		                     AND p.article BETWEEN i.first_article AND i.last_article
		                     AND p.article <@ x.parts AND p.source <> 'import'))
		ON CONFLICT (job, rcpt) DO NOTHING`
)

// Expand turns up to limit pending outbound jobs into delivery rows, each
// job in its own transaction, and returns how many it expanded. A post's
// or a digest's recipients are the list's members as they are at
// expansion time, and the digest spans decide between the two exactly,
// whenever the expansion runs (expandPost, expandDigest).
func Expand(ctx context.Context, d *sqlx.DB, limit int) (int, error) {
	n := 0
	for n < limit {
		done, err := expandOne(ctx, d)
		if err != nil || !done {
			return n, err
		}
		n++
	}
	return n, nil
}

func expandOne(ctx context.Context, d *sqlx.DB) (bool, error) {
	found := false
	err := db.InTx(ctx, d, func(tx *sqlx.Tx) error {
		var job struct {
			ID     int64  `db:"id"`
			Kind   string `db:"kind"`
			ListID int64  `db:"list_id"`
		}
		err := tx.GetContext(ctx, &job, `SELECT id, kind, list_id FROM outbound
			WHERE state = 'pending' AND next_attempt_at <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`)
		if db.IsNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		q := map[string]string{"post": expandPost, "notice": expandNotice, "digest": expandDigest}[job.Kind]
		if _, err := tx.ExecContext(ctx, q, job.ID, job.ListID); err != nil {
			return fmt.Errorf("expand job %d: %w", job.ID, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbound SET state = 'expanded' WHERE id = $1`, job.ID)
		return err
	})
	return found, err
}

// Delivery is one claimed copy to send.
type Delivery struct {
	ID        int64     `db:"id"`
	Job       int64     `db:"job"`
	ListID    int64     `db:"list_id"`
	Rcpt      string    `db:"rcpt"`
	Domain    string    `db:"domain"`
	Variant   string    `db:"variant"` // a digest copy's share of the issue (internal/digest.Variant)
	Attempts  int       `db:"attempts"`
	CreatedAt time.Time `db:"created_at"`
}

// Claim leases up to limit due copies for lease and returns them, oldest
// first. The attempt is counted now, before sending, so a copy that keeps
// crashing its worker still runs out of attempts.
func Claim(ctx context.Context, q db.Querier, limit int, lease time.Duration) ([]Delivery, error) {
	var ds []Delivery
	err := q.SelectContext(ctx, &ds, `
		UPDATE deliveries SET state = 'sending', lease_until = now() + $2 * interval '1 millisecond', attempts = attempts + 1
		 WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= now()
		               ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING id, job, list_id, rcpt, domain, variant, attempts, created_at`, limit, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	return ds, nil
}

// Reclaim returns copies whose lease ran out (their worker died) to the
// queue, and returns how many.
func Reclaim(ctx context.Context, q db.Querier) (int64, error) {
	res, err := q.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', lease_until = NULL
		WHERE state = 'sending' AND lease_until < now()`)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Keep is how long a failed copy and a finished job stay in the queue
// after they are done: long enough for an owner to see what failed.
const Keep = 30 * 24 * time.Hour

// Prune deletes what the queue keeps only for a while: copies that
// failed more than keep ago, and expanded jobs older than that whose
// copies are all gone (sent, or pruned). It returns how many rows went.
// With sent copies deleted as they are sent, this keeps both tables the
// size of the work in hand, whatever the lists' history.
func Prune(ctx context.Context, q db.Querier, keep time.Duration) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM deliveries WHERE state = 'failed' AND done_at < now() - $1 * interval '1 second'`,
		keep.Seconds())
	if err != nil {
		return 0, fmt.Errorf("prune copies: %w", err)
	}
	copies, _ := res.RowsAffected()
	res, err = q.ExecContext(ctx, `DELETE FROM outbound o WHERE o.state = 'expanded' AND o.created_at < now() - $1 * interval '1 second'
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.job = o.id)`, keep.Seconds())
	if err != nil {
		return copies, fmt.Errorf("prune jobs: %w", err)
	}
	jobs, _ := res.RowsAffected()
	return copies + jobs, nil
}

// Result is the outcome of one attempt at a copy.
type Result struct {
	ID    int64
	State string // sent, failed, or pending (retry at At)
	Code  int
	Error string
	At    time.Time
}

// Record writes many results, in one transaction. A copy that was sent
// is deleted: the queue holds what is still to do and what failed, and
// the log line of each sent copy is the record of who got what. Deleting
// also writes no index entries, where marking the row sent wrote one in
// every index of the table, and keeps the table the size of the queue
// rather than of every copy ever sent.
func Record(ctx context.Context, d *sqlx.DB, rs []Result) error {
	var sent []int64
	var rest []Result
	for _, r := range rs {
		if r.State == "sent" {
			sent = append(sent, r.ID)
		} else {
			rest = append(rest, r)
		}
	}
	if len(rest) == 0 {
		return deleteSent(ctx, d, sent)
	}
	return db.InTx(ctx, d, func(tx *sqlx.Tx) error {
		if err := deleteSent(ctx, tx, sent); err != nil {
			return err
		}
		return recordOthers(ctx, tx, rest)
	})
}

// deleteSent deletes the sent copies still leased: a copy whose lease was
// lost is another worker's now.
func deleteSent(ctx context.Context, q db.Querier, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	// A join with the ids, as in recordOthers, looks each row up by its
	// key; "id = ANY (…) AND state = 'sending'" was planned as a bitmap
	// AND with deliveries_leased, a scan of every leased copy per write.
	if _, err := q.ExecContext(ctx, `DELETE FROM deliveries d USING unnest($1::bigint[]) AS r(id)
		WHERE d.id = r.id AND d.state = 'sending'`, pq.Int64Array(ids)); err != nil {
		return fmt.Errorf("record results: %w", err)
	}
	return nil
}

// recordOthers writes failures and deferrals in one statement.
func recordOthers(ctx context.Context, q db.Querier, rs []Result) error {
	ids := make([]int64, len(rs))
	states := make([]string, len(rs))
	codes := make([]int64, len(rs))
	errs := make([]string, len(rs))
	ats := make([]string, len(rs))
	for i, r := range rs {
		ids[i], states[i], codes[i], errs[i] = r.ID, r.State, int64(r.Code), r.Error
		ats[i] = r.At.UTC().Format(time.RFC3339Nano)
		if r.At.IsZero() {
			ats[i] = time.Now().UTC().Format(time.RFC3339Nano)
		}
	}
	_, err := q.ExecContext(ctx, `
		UPDATE deliveries d SET state = r.state, lease_until = NULL, last_code = nullif(r.code, 0),
		       last_error = nullif(r.err, ''),
		       next_attempt_at = CASE WHEN r.state = 'pending' THEN r.at ELSE d.next_attempt_at END,
		       done_at = CASE WHEN r.state = 'pending' THEN NULL ELSE now() END
		  FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::timestamptz[]) AS r(id, state, code, err, at)
		 WHERE d.id = r.id AND d.state = 'sending'`, // a copy whose lease was lost is another worker's now
		pq.Int64Array(ids), pq.StringArray(states), pq.Int64Array(codes), pq.StringArray(errs), pq.StringArray(ats))
	if err != nil {
		return fmt.Errorf("record results: %w", err)
	}
	return nil
}

// Extend renews the lease on copies still being sent, so a long round
// does not lose them to another worker's Reclaim.
func Extend(ctx context.Context, q db.Querier, ids []int64, lease time.Duration) error {
	_, err := q.ExecContext(ctx, `UPDATE deliveries SET lease_until = now() + $2 * interval '1 millisecond'
		WHERE id = ANY ($1::bigint[]) AND state = 'sending'`, pq.Int64Array(ids), lease.Milliseconds())
	return err
}

// Backoff is the retry schedule: First after the first failure, doubling
// up to Max, with ±Jitter of randomness so that copies failed together do
// not retry together; a copy older than GiveUp fails for good.
type Backoff struct {
	First, Max, GiveUp time.Duration
	Jitter             float64 // fraction, e.g. 0.1
}

// DefaultBackoff is 5 minutes doubling to 4 hours, giving up after 48 hours.
var DefaultBackoff = Backoff{First: 5 * time.Minute, Max: 4 * time.Hour, GiveUp: 48 * time.Hour, Jitter: 0.1}

// Delay returns the wait after the given number of attempts (1 = the first
// one failed). r is a uniform random number in [0, 1). The arithmetic is in
// float64, converted last, so no factor is truncated.
func (b Backoff) Delay(attempts int, r float64) time.Duration {
	d := float64(b.First) * math.Pow(2, float64(max(attempts, 1)-1))
	d = math.Min(d, float64(b.Max))
	d *= 1 + b.Jitter*(2*r-1)
	return time.Duration(d)
}

// Jitter draws the random number for Delay.
func Jitter() float64 { return rand.Float64() }
