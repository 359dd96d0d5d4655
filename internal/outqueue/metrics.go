package outqueue

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the queue's depth and age at each scrape, read from
// the database (every parley process sees the same queue, so any one of
// them can report it).
type Collector struct {
	db      *sqlx.DB
	timeout time.Duration
	copies  *prometheus.Desc
	jobs    *prometheus.Desc
	oldest  *prometheus.Desc
}

// NewCollector returns a collector that queries db with timeout.
func NewCollector(db *sqlx.DB, timeout time.Duration) *Collector {
	return &Collector{db: db, timeout: timeout,
		copies: prometheus.NewDesc("parley_queue_copies", "Copies waiting to be sent (pending, including retries) or being sent now.", []string{"state"}, nil),
		jobs:   prometheus.NewDesc("parley_queue_jobs_unexpanded", "Posts and notices not yet expanded into copies.", nil, nil),
		oldest: prometheus.NewDesc("parley_queue_oldest_pending_seconds", "Age of the oldest copy still waiting to be sent (0: none).", nil, nil),
	}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.copies
	ch <- c.jobs
	ch <- c.oldest
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var r struct {
		Pending int64   `db:"pending"`
		Sending int64   `db:"sending"`
		Jobs    int64   `db:"jobs"`
		Oldest  float64 `db:"oldest"`
	}
	err := c.db.GetContext(ctx, &r, `SELECT
		(SELECT count(*) FROM deliveries WHERE state = 'pending') AS pending,
		(SELECT count(*) FROM deliveries WHERE state = 'sending') AS sending,
		(SELECT count(*) FROM outbound WHERE state IN ('pending', 'sending')) AS jobs,
		coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM deliveries WHERE state = 'pending'), 0)::float8 AS oldest`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.copies, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.copies, prometheus.GaugeValue, float64(r.Pending), "pending")
	ch <- prometheus.MustNewConstMetric(c.copies, prometheus.GaugeValue, float64(r.Sending), "sending")
	ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(r.Jobs))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, r.Oldest)
}
