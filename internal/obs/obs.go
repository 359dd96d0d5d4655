// Package obs owns how parley reports on itself: the slog logger built from
// configuration, and the Prometheus registry that /metrics serves.
//
// Log records use stable keys so they can be searched and alerted on:
// list, msg_id, rcpt, job_id, event (what happened, one word such as
// "ready", "migrated", "pg_started"). Nothing here is global: the logger
// and registry are made once in internal/app and passed down.
package obs

import (
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewLogger returns a logger writing to w in the given format ("json" or
// "text") at the given level.
func NewLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// NewRegistry returns a registry with the Go runtime and process
// collectors and parley's build information.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "parley_build_info",
		Help:        "Always 1; the version label says which parley is running.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}
