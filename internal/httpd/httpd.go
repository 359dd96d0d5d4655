// Package httpd owns parley's HTTP side: liveness (/healthz), readiness
// (/readyz, which checks the database), Prometheus metrics (/metrics), the
// one-click unsubscribe handler's route, and everything else to the web
// archive (internal/web).
package httpd

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger checks that the database answers.
type Pinger interface {
	PingContext(ctx context.Context) error
}

// Options configure the handler.
type Options struct {
	DB       Pinger
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Unsubscribe serves /unsubscribe/{token} (one-click, RFC 8058); nil: none.
	Unsubscribe http.Handler
	// Archive serves every other path: the web archive (internal/web);
	// nil: none.
	Archive http.Handler
}

// Handler returns the HTTP routes.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := o.DB.PingContext(ctx); err != nil {
			o.Logger.Warn("readiness check failed", "event", "not_ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("database unavailable\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	if o.Unsubscribe != nil {
		mux.Handle("/unsubscribe/{token}", o.Unsubscribe)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}))
	if o.Archive != nil {
		mux.Handle("/", o.Archive)
	}
	return mux
}

// NewServer wraps the handler with timeouts, so a slow client cannot hold
// a connection or memory for long.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
