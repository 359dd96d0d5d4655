package imapd

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are what the IMAP side reports to Prometheus.
type Metrics struct {
	Sessions prometheus.Gauge
	Logins   *prometheus.CounterVec   // by result: anonymous, member, failed
	Commands *prometheus.HistogramVec // by command: select, fetch, search, status, list
}

// NewMetrics returns unregistered metrics; register Collectors with the
// server's registry.
func NewMetrics() *Metrics {
	return &Metrics{
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_imap_sessions",
			Help: "IMAP connections open now.",
		}),
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_imap_logins_total",
			Help: "IMAP logins by result: anonymous, member or failed.",
		}, []string{"result"}),
		Commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_imap_command_seconds",
			Help:    "Time the archive took to answer IMAP commands, by command.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
	}
}

// Collectors lists the metrics for registering.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Sessions, m.Logins, m.Commands}
}

// timed records how long command took since start; use with defer.
func (m *Metrics) timed(command string, start time.Time) {
	m.Commands.WithLabelValues(command).Observe(time.Since(start).Seconds())
}
