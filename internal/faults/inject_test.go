package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// injector breaks things at random moments, one fault at a time (relay
// faults run beside the others), and counts what it did.
type injector struct {
	w      *workload
	db     *database
	admin  *sqlx.DB
	mu     sync.Mutex
	counts map[string]int
	relay  sync.WaitGroup
	busy   bool     // a relay fault is on
	cli    []string // the environment of a parley command
}

func (in *injector) count(name string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.counts[name]++
}

// run injects faults until ctx ends, then leaves everything running and
// healthy. It returns an error only when it cannot restore a component.
func (in *injector) run(ctx context.Context, rng *rand.Rand) error {
	for {
		select {
		case <-ctx.Done():
			in.relay.Wait()
			return in.restore()
		case <-time.After(time.Duration(500+rng.IntN(2500)) * time.Millisecond):
		}
		if err := in.restore(); err != nil {
			return err
		}
		if err := in.one(rng); err != nil {
			return err
		}
	}
}

func (in *injector) one(rng *rand.Rand) error {
	pause := func(lo, hi int) { time.Sleep(time.Duration(lo+rng.IntN(hi-lo)) * time.Millisecond) }
	switch r := rng.IntN(100); {
	case r < 5:
		in.killCut(rng)
	case r < 25:
		p := in.w.procs[rng.IntN(len(in.w.procs))]
		p.kill()
		in.count("kill -9 one parley")
		pause(0, 1500)
		return p.start(context.Background())
	case r < 32:
		for _, p := range in.w.procs {
			p.kill()
		}
		in.count("kill -9 both parleys")
		pause(0, 1500)
		for _, p := range in.w.procs {
			if err := p.start(context.Background()); err != nil {
				return err
			}
		}
	case r < 52:
		crash := r >= 42
		if err := in.db.stop(context.Background(), crash); err != nil {
			return fmt.Errorf("stopping PostgreSQL: %w", err)
		}
		in.count(map[bool]string{false: "PostgreSQL stopped (fast)", true: "PostgreSQL crashed (SIGQUIT)"}[crash])
		pause(300, 3000)
		return in.db.start(context.Background())
	case r < 72:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var n int
		// Half of parley's sessions, wherever they are: idle, in a
		// transaction, or in the middle of a commit.
		if err := in.admin.GetContext(ctx, &n, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			  AND backend_type = 'client backend' AND random() < 0.5`); err == nil {
			in.count("PostgreSQL connections cut")
			in.mu.Lock()
			in.counts["  (sessions cut)"] += n
			in.mu.Unlock()
		}
	default:
		in.relayFault(rng)
	}
	return nil
}

// killCut runs `parley digest send` on the digest list and kills it at
// a random moment, often in the middle of cutting the issue.
func (in *injector) killCut(rng *rand.Rand) {
	cmd := exec.Command(binary, "digest", "send", digestList)
	cmd.Env = in.cli
	if err := cmd.Start(); err != nil {
		return
	}
	time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	in.count("kill -9 parley digest send")
}

// relayFault makes the sink misbehave for 2–10 s in the background.
func (in *injector) relayFault(rng *rand.Rand) {
	in.mu.Lock()
	if in.busy {
		in.mu.Unlock()
		return
	}
	in.busy = true
	in.mu.Unlock()
	f := []smtpsink.Fault{smtpsink.TempFail, smtpsink.DropInData, smtpsink.Hang}[rng.IntN(3)]
	d := time.Duration(2000+rng.IntN(8000)) * time.Millisecond
	in.count("relay " + f.String())
	in.w.sink.SetFault(f)
	in.relay.Add(1)
	go func() {
		defer in.relay.Done()
		time.Sleep(d)
		in.w.sink.SetFault(smtpsink.Healthy)
		in.mu.Lock()
		in.busy = false
		in.mu.Unlock()
	}()
}

// restore brings back whatever is down; a parley that died without being
// killed is a violation (no fault may take it down).
func (in *injector) restore() error {
	if in.db.cluster == nil {
		if err := in.db.start(context.Background()); err != nil {
			return err
		}
	}
	for _, p := range in.w.procs {
		if p.alive() {
			continue
		}
		in.w.violate("%s exited on its own (see %s)", p.name, p.logPath)
		if err := p.start(context.Background()); err != nil {
			return err
		}
	}
	return nil
}

// report lists the faults injected, most frequent first.
func (in *injector) report() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var names []string
	for k := range in.counts {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return in.counts[names[i]] > in.counts[names[j]] })
	var out []string
	for _, k := range names {
		out = append(out, fmt.Sprintf("%-34s %6d", k, in.counts[k]))
	}
	return out
}
