package outqueue

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestCollector: depth by state, unexpanded jobs, the oldest pending
// copy's age, as the database has them.
func TestCollector(t *testing.T) {
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("q@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
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
