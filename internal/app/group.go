package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// group runs the servers and stops them in the reverse order of starting,
// each with a share of the shutdown budget, so intake stops before the
// database it writes to goes away.
type group struct {
	members []member
	failed  chan error
}

type member struct {
	name     string
	shutdown func(context.Context) error
	done     chan struct{}
}

// add runs serve in the background; shutdown stops it gracefully.
func (g *group) add(name string, serve func() error, shutdown func(context.Context) error) {
	if g.failed == nil {
		g.failed = make(chan error, 8)
	}
	m := member{name: name, shutdown: shutdown, done: make(chan struct{})}
	g.members = append(g.members, m)
	go func() {
		defer close(m.done)
		if err := serve(); err != nil {
			g.failed <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

func (g *group) stop(ctx context.Context, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownBudget)
	defer cancel()
	for i := len(g.members) - 1; i >= 0; i-- {
		m := g.members[i]
		start := time.Now()
		if err := m.shutdown(sctx); err != nil {
			log.Warn("shutdown", "event", "shutdown", "component", m.name, "err", err)
		}
		<-m.done
		log.Debug("stopped", "event", "shutdown", "component", m.name, "took", time.Since(start).Round(time.Millisecond))
	}
}
