package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/notify"
	"github.com/parley-list/parley/internal/outqueue"
)

// Options configure the delivery workers.
type Options struct {
	DB        *sqlx.DB
	DSN       string // for LISTEN; "" polls only
	Relay     Relay
	Logger    *slog.Logger
	Site      Site
	Workers   int              // copies in flight at once (default 8)
	PerDomain int              // copies in flight to one domain (default 4)
	Batch     int              // copies claimed at a time (default 256)
	Lease     time.Duration    // how long a claimed copy is ours (default 5m)
	Poll      time.Duration    // fallback when no notification comes (default 5s)
	Backoff   outqueue.Backoff // zero: outqueue.DefaultBackoff
	Results   *prometheus.CounterVec
	Bounces   BounceRecorder // nil: permanent refusals are not scored
	Unsub     Tokens         // signs one-click unsubscribe links when Site.BaseURL is set
	DMARC     PolicyChecker  // nil: DMARC mitigation only for lists set to 'always'
}

// PolicyChecker says whether an author domain's DMARC policy is strict.
type PolicyChecker interface {
	Strict(ctx context.Context, domain string) bool
}

// Tokens makes the token of a member's one-click unsubscribe link.
type Tokens interface {
	Token(listID int64, address string) string
}

// BounceRecorder scores a permanent refusal given at delivery time like a
// bounce for the same recipient.
type BounceRecorder interface {
	RecordSMTP(ctx context.Context, listID int64, rcpt string, code int, msg string) error
}

// Service runs the delivery workers.
type Service struct {
	o    Options
	wake chan struct{}
	jobs jobCache
}

// NewResults returns the counter for Options.Results.
func NewResults() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_delivery_copies_total",
		Help: "Copies handed to the relay, by result (sent, deferred, failed).",
	}, []string{"result"})
}

// New returns the delivery service; Run starts it.
func New(o Options) *Service {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.PerDomain <= 0 {
		o.PerDomain = 4
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Backoff == (outqueue.Backoff{}) {
		o.Backoff = outqueue.DefaultBackoff
	}
	return &Service{o: o, wake: make(chan struct{}, 1)}
}

// Wake makes the workers look at the queue now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then returns once the copies in flight are
// done (each is recorded as sent, deferred or failed).
func (s *Service) Run(ctx context.Context) error {
	if s.o.DSN != "" {
		l := s.listen()
		defer l.Close()
	}
	reclaim := time.NewTicker(s.o.Lease / 4)
	defer reclaim.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select { // also when the queue never runs dry
		case <-reclaim.C:
			s.reclaim(ctx)
		default:
		}
		n, err := s.round(ctx)
		if err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("delivery round failed", "event", "delivery_error", "err", err)
		}
		if n > 0 && err == nil {
			continue // there may be more
		}
		poll.Reset(s.o.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-poll.C:
		case <-reclaim.C:
			s.reclaim(ctx)
		}
	}
}

// reclaim queues again the copies of workers that died, and prunes what
// the queue no longer needs to keep.
func (s *Service) reclaim(ctx context.Context) {
	if n, err := outqueue.Reclaim(ctx, s.o.DB); err == nil && n > 0 {
		s.o.Logger.Warn("copies whose worker died are queued again", "event", "lease_expired", "count", n)
	}
	if n, err := outqueue.Prune(ctx, s.o.DB, outqueue.Keep); err != nil && ctx.Err() == nil {
		s.o.Logger.Warn("cannot prune the queue", "event", "prune_error", "err", err)
	} else if n > 0 {
		s.o.Logger.Info("old failed copies and finished jobs pruned", "event", "queue_pruned", "count", n)
	}
}

// keepLeases renews the round's leases until stop is closed.
func (s *Service) keepLeases(ctx context.Context, ds []outqueue.Delivery, stop <-chan struct{}) {
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	t := time.NewTicker(s.o.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := outqueue.Extend(ctx, s.o.DB, ids, s.o.Lease); err != nil {
				s.o.Logger.Warn("cannot renew delivery leases", "event", "lease_renew_failed", "err", err)
			}
		}
	}
}

// listen wakes the workers on NOTIFY outbound, from any parley process,
// and whenever notifications may have been missed.
func (s *Service) listen() *notify.Listener {
	return notify.Listen(s.o.DSN, notify.Outbound, s.o.Logger, func(string) { s.Wake() }, s.Wake)
}

// round expands pending jobs, claims a batch of copies and sends them.
// It returns how much it did (jobs expanded and copies handled): a round
// that only expanded jobs with no copies (a post on a list whose members
// all take digests) did work too, and the next round must not wait for
// the poll.
func (s *Service) round(ctx context.Context) (int, error) {
	expanded, err := outqueue.Expand(ctx, s.o.DB, 16)
	if err != nil {
		return 0, err
	}
	ds, err := outqueue.Claim(ctx, s.o.DB, s.o.Batch, s.o.Lease)
	if err != nil || len(ds) == 0 {
		return expanded, err
	}
	// Past this the copies not sent yet go back to the queue anyway.
	until := time.Now().Add(s.o.Lease)
	leased := make(chan struct{})
	defer close(leased)
	go s.keepLeases(context.WithoutCancel(ctx), ds, leased)
	jobs := map[jobKey]*job{}
	for _, d := range ds {
		if k := (jobKey{d.Job, d.Variant}); jobs[k] == nil {
			jobs[k] = s.job(context.WithoutCancel(ctx), d)
		}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.o.Workers)
	perDomain := s.o.PerDomain
	if pl, ok := s.o.Relay.(interface{ PerDomainLimit() bool }); ok && !pl.PerDomainLimit() {
		perDomain = s.o.Workers
	}
	domains := newDomainLimiter(perDomain)
	rec := newRecorder(s.o.DB, s.o.Logger, until)
	for _, group := range s.batches(ds, jobs) {
		if !rec.healthy(until) || !rec.room(s.o.Workers, until) {
			break // the rest come back when their leases run out
		}
		slots <- struct{}{}
		domains.acquire(group[0].Domain)
		wg.Go(func() {
			defer func() { domains.release(group[0].Domain); <-slots }()
			j := jobs[jobKey{group[0].Job, group[0].Variant}]
			if len(group) == 1 {
				s.deliver(context.WithoutCancel(ctx), group[0], j, rec)
				return
			}
			s.deliverBatch(context.WithoutCancel(ctx), group, j, rec)
		})
	}
	wg.Wait()
	rec.wait()
	return expanded + len(ds), nil
}

// maxBatchRcpts bounds the recipients of one shared transaction.
const maxBatchRcpts = 100

// batches groups the claimed copies into units of work: one copy each,
// except that copies of a post to a list without VERP that go to the same
// domain share transactions (when the relay can do that).
func (s *Service) batches(ds []outqueue.Delivery, jobs map[jobKey]*job) [][]outqueue.Delivery {
	_, canBatch := s.o.Relay.(BatchRelay)
	var out [][]outqueue.Delivery
	groups := map[[3]string][]outqueue.Delivery{}
	var order [][3]string
	for _, d := range ds {
		j := jobs[jobKey{d.Job, d.Variant}]
		if !canBatch || j.err != nil || j.from != "" || j.unsigned != nil || j.list.VERP {
			out = append(out, []outqueue.Delivery{d})
			continue
		}
		k := [3]string{fmt.Sprint(d.Job), d.Variant, d.Domain}
		if len(groups[k]) == 0 {
			order = append(order, k)
		}
		groups[k] = append(groups[k], d)
	}
	for _, k := range order {
		g := groups[k]
		for len(g) > maxBatchRcpts {
			out = append(out, g[:maxBatchRcpts])
			g = g[maxBatchRcpts:]
		}
		out = append(out, g)
	}
	return out
}

// deliverBatch sends one message to several recipients at one domain and
// records each recipient's result.
func (s *Service) deliverBatch(ctx context.Context, group []outqueue.Delivery, j *job, rec *recorder) {
	rcpts := make([]string, len(group))
	for i, d := range group {
		rcpts[i] = d.Rcpt
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	errs := s.o.Relay.(BatchRelay).SendBatch(sctx, mailaddr.ServiceAddr(j.list.Address, mailaddr.KindBounce, ""), rcpts, j.msg)
	cancel()
	for i, d := range group {
		s.record(ctx, d, j, errs[i], rec)
	}
}

// deliver sends one copy and records the result.
func (s *Service) deliver(ctx context.Context, d outqueue.Delivery, j *job, rec *recorder) {
	err := j.err
	if err == nil {
		from := j.from
		switch {
		case from != "":
		case j.list.VERP:
			from = mailaddr.VERP(j.list.Address, d.Rcpt)
		default:
			from = mailaddr.ServiceAddr(j.list.Address, mailaddr.KindBounce, "")
		}
		msg := j.msg
		if j.unsigned != nil {
			msg, err = s.personal(j, d)
		}
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			err = s.o.Relay.Send(sctx, from, d.Rcpt, msg)
			cancel()
		}
	}
	s.record(ctx, d, j, err, rec)
}

// record files one copy's result: sent, deferred with backoff, or failed
// (a permanent refusal, or too old to keep trying).
func (s *Service) record(ctx context.Context, d outqueue.Delivery, j *job, err error, rec *recorder) {
	log := s.o.Logger.With("job_id", d.Job, "rcpt", d.Rcpt, "list", j.list.Address, "msg_id", j.msgID)
	var perm *Permanent
	var result string
	switch {
	case err == nil:
		result = "sent"
		rec.add(outqueue.Result{ID: d.ID, State: "sent", Code: 250})
	case errors.As(err, &perm):
		result = "failed"
		rec.add(outqueue.Result{ID: d.ID, State: "failed", Code: perm.Code, Error: perm.Msg})
		if s.o.Bounces != nil && j.from == "" && j.err == nil { // bounces of posts count; of notices, not
			if berr := s.o.Bounces.RecordSMTP(ctx, d.ListID, d.Rcpt, perm.Code, perm.Msg); berr != nil {
				log.Warn("cannot record bounce", "event", "bounce_error", "err", berr)
			}
		}
	case time.Since(d.CreatedAt) > s.o.Backoff.GiveUp:
		result = "gave_up"
		rec.add(outqueue.Result{ID: d.ID, State: "failed", Code: codeOf(err), Error: fmt.Sprintf("gave up after %d attempts: %v", d.Attempts, err)})
	default:
		result = "deferred"
		at := time.Now().Add(s.o.Backoff.Delay(d.Attempts, outqueue.Jitter()))
		rec.add(outqueue.Result{ID: d.ID, State: "pending", Code: codeOf(err), Error: err.Error(), At: at})
		log = log.With("retry_at", at.UTC().Format(time.RFC3339))
	}
	if s.o.Results != nil {
		// Giving up is a failure on the dashboard; the log tells them apart.
		s.o.Results.WithLabelValues(strings.Replace(result, "gave_up", "failed", 1)).Inc()
	}
	if err != nil {
		log.Info("copy "+result, "event", result, "attempt", d.Attempts, "err", err)
		return
	}
	// One line per copy, as an MTA's log has: the record of who got what.
	log.Info("copy sent", "event", "sent")
}

// recorder writes results as they come, in group commits: while one
// write is running, the results that arrive meanwhile wait and go in the
// next one. A fan-out to 10,000 members is then a few hundred writes, not
// 10,000, and a copy the relay took is recorded within about one write's
// time, which bounds the copies sent again after a crash.
type recorder struct {
	db      *sqlx.DB
	log     *slog.Logger
	giveUp  time.Time // after this, results that cannot be written are dropped
	mu      sync.Mutex
	rs      []outqueue.Result
	pending int // results added and not yet written (queued or being written)
	running bool
	failing bool // the database does not take results now
	idle    *sync.Cond
	written *sync.Cond // a write finished: pending went down
}

func newRecorder(db *sqlx.DB, log *slog.Logger, giveUp time.Time) *recorder {
	r := &recorder{db: db, log: log, giveUp: giveUp}
	r.idle = sync.NewCond(&r.mu)
	r.written = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) add(res outqueue.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rs = append(r.rs, res)
	r.pending++
	if !r.running {
		r.running = true
		go r.loop()
	}
}

// loop writes results in group commits. When the database session is
// lost it keeps them and tries again until giveUp: a result not written
// means the copy is sent again, so it is worth waiting for the database
// (and sending is paused meanwhile, see healthy).
func (r *recorder) loop() {
	wait := 100 * time.Millisecond
	for {
		r.mu.Lock()
		rs := r.rs
		r.rs = nil
		if len(rs) == 0 {
			r.running, r.failing = false, false
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := outqueue.Record(ctx, r.db, rs)
		cancel()
		r.mu.Lock()
		switch {
		case err == nil:
			r.failing, wait = false, 100*time.Millisecond
			r.pending -= len(rs)
			r.written.Broadcast()
		case db.IsConnectionLost(err) && time.Now().Before(r.giveUp):
			if !r.failing {
				r.log.Warn("cannot record delivery results; sending paused until the database answers",
					"event", "record_paused", "count", len(rs), "err", err)
			}
			r.rs, r.failing = append(rs, r.rs...), true
			r.written.Broadcast() // room looks at its deadline again
		default:
			// The leases run out and the copies are tried again: at least once.
			r.log.Error("cannot record delivery results", "event", "record_failed", "count", len(rs), "err", err)
			r.pending -= len(rs)
			r.written.Broadcast()
		}
		failing := r.failing
		r.mu.Unlock()
		if failing {
			time.Sleep(wait)
			wait = min(2*wait, 2*time.Second)
		}
	}
}

// healthy reports whether results are being written, waiting while they
// are not, until until: sending a copy whose result cannot be recorded
// only makes a duplicate later.
func (r *recorder) healthy(until time.Time) bool {
	for {
		r.mu.Lock()
		failing := r.failing
		r.mu.Unlock()
		if !failing {
			return true
		}
		if time.Now().After(until) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// room waits until fewer than max results are waiting to be written, or
// until passes (false). Sending pauses while the database lags behind
// the relay: every copy sent and not recorded is one sent again after a
// crash, so this bounds the duplicates a crash makes to the copies in
// flight plus max, however slow the writes are.
func (r *recorder) room(max int, until time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.pending >= max {
		if time.Now().After(until) {
			return false
		}
		// Woken by each write; a write that fails for good also wakes.
		r.written.Wait()
	}
	return true
}

// wait returns when every result added so far is written.
func (r *recorder) wait() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.running {
		r.idle.Wait()
	}
}

// domainLimiter caps copies in flight per destination domain.
type domainLimiter struct {
	max  int
	mu   sync.Mutex
	cond *sync.Cond
	busy map[string]int
}

func newDomainLimiter(max int) *domainLimiter {
	l := &domainLimiter{max: max, busy: map[string]int{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *domainLimiter) acquire(domain string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.busy[domain] >= l.max {
		l.cond.Wait()
	}
	l.busy[domain]++
}

func (l *domainLimiter) release(domain string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[domain]--; l.busy[domain] <= 0 {
		delete(l.busy, domain)
	}
	l.cond.Broadcast()
}
