package httpd

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type pinger struct{ err error }

func (p pinger) PingContext(context.Context) error { return p.err }

func TestRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path string
		dbErr              error
		wantCode           int
		wantBody           string
	}{
		{"liveness", "GET", "/healthz", nil, 200, "ok"},
		{"liveness ignores the database", "GET", "/healthz", errors.New("down"), 200, "ok"},
		{"ready", "GET", "/readyz", nil, 200, "ok"},
		{"not ready without database", "GET", "/readyz", errors.New("down"), 503, "database unavailable"},
		{"metrics", "GET", "/metrics", nil, 200, "test_metric 1"},
		{"unknown path", "GET", "/nope", nil, 404, ""},
		{"wrong method", "POST", "/healthz", nil, 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_metric", Help: "x"})
			g.Set(1)
			reg.MustRegister(g)
			h := Handler(Options{DB: pinger{tc.dbErr}, Registry: reg, Logger: slog.New(slog.DiscardHandler)})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}
}
