package outqueue

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newList returns a fresh database with one list at addr.
func newList(t *testing.T, addr string) (*sqlx.DB, lists.List) {
	t.Helper()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList(addr)
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d, l
}

// TestCollector: depth by state, unexpanded jobs, the oldest pending
// copy's age, as the database has them.
func TestCollector(t *testing.T) {
	d, l := newList(t, "q@lists.example.org")
	var job int64
	d.MustExec(`INSERT INTO outbound (kind, list_id, rcpts, body, state) VALUES ('notice', $1, '{x@example.org}', 'x', 'expanded')`, l.ID)
	if err := d.Get(&job, `SELECT id FROM outbound`); err != nil {
		t.Fatal(err)
	}
	d.MustExec(`INSERT INTO outbound (kind, list_id, rcpts, body) VALUES ('notice', $1, '{y@example.org}', 'y')`, l.ID)
	for i, state := range []string{"pending", "pending", "sending", "sent"} {
		d.MustExec(`INSERT INTO deliveries (job, list_id, rcpt, domain, state, created_at) VALUES ($1, $2, $3, 'example.org', $4, now() - interval '1 hour')`,
			job, l.ID, strings.Repeat("r", i+1)+"@example.org", state)
	}

	want := `
# HELP parley_queue_copies Copies waiting to be sent (pending, including retries) or being sent now.
# TYPE parley_queue_copies gauge
parley_queue_copies{state="pending"} 2
parley_queue_copies{state="sending"} 1
# HELP parley_queue_jobs_unexpanded Posts and notices not yet expanded into copies.
# TYPE parley_queue_jobs_unexpanded gauge
parley_queue_jobs_unexpanded 1
`
	c := NewCollector(d, 10*time.Second)
	if err := promtest.CollectAndCompare(c, strings.NewReader(want),
		"parley_queue_copies", "parley_queue_jobs_unexpanded"); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "parley_queue_oldest_pending_seconds" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v < 3590 || v > 3700 {
				t.Errorf("oldest pending copy is %v s old, want about 3600", v)
			}
			return
		}
	}
	t.Error("no parley_queue_oldest_pending_seconds")
}

// TestPrune: failed copies and finished jobs go once they are older than
// keep; a job with a copy still to send, a recent failure and an
// unexpanded job stay.
func TestPrune(t *testing.T) {
	d, l := newList(t, "p@lists.example.org")
	job := func(state, age string) int64 {
		var id int64
		if err := d.Get(&id, `INSERT INTO outbound (kind, list_id, rcpts, body, state, created_at)
			VALUES ('notice', $1, '{x@example.org}', 'x', $2, now() - $3::interval) RETURNING id`, l.ID, state, age); err != nil {
			t.Fatal(err)
		}
		return id
	}
	copyOf := func(job int64, state, doneAgo string) {
		d.MustExec(`INSERT INTO deliveries (job, list_id, rcpt, domain, state, done_at)
			VALUES ($1, $2, $3 || '@example.org', 'example.org', $4, now() - $5::interval)`, job, l.ID, state+doneAgo, state, doneAgo)
	}
	done := job("expanded", "40 days")    // all its copies sent: goes
	oldFail := job("expanded", "40 days") // its one copy failed 35 days ago: both go
	copyOf(oldFail, "failed", "35 days")
	recentFail := job("expanded", "40 days") // failed 2 days ago: both stay
	copyOf(recentFail, "failed", "2 days")
	retrying := job("expanded", "40 days") // a copy still to retry: stays
	copyOf(retrying, "pending", "0 days")
	young := job("expanded", "1 day") // stays
	unexpanded := job("pending", "40 days")

	n, err := Prune(t.Context(), d, Keep)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("Prune removed %d rows, want 3 (a failed copy and two jobs)", n)
	}
	var left []int64
	if err := d.Select(&left, `SELECT id FROM outbound ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	want := []int64{recentFail, retrying, young, unexpanded}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("jobs left %v, want %v (pruned: %d, %d)", left, want, done, oldFail)
	}
	var copies int
	d.Get(&copies, `SELECT count(*) FROM deliveries`)
	if copies != 2 {
		t.Errorf("%d copies left, want 2", copies)
	}
}
