package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/parley-list/parley/internal/testutil/parleybin"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestFaults runs the workload under faults for -faults.duration, lets it
// drain, and checks the invariants (see check_test.go).
func TestFaults(t *testing.T) {
	s := *seed
	if s == 0 {
		s = time.Now().UnixNano()
	}
	t.Logf("seed %d (rerun with -faults.seed=%d)", s, s)
	dir := parleybin.Dir(t)
	db, err := startDatabase(t.Context(), filepath.Join(dir, "pg"))
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if db.cluster != nil {
			db.stop(context.Background(), false)
		}
	})
	sink := smtpsink.Start(t)
	env := parleybin.Env("PARLEY_DATABASE_URL="+db.dsn(), "PARLEY_RELAY=smtp://"+sink.Addr, "PARLEY_DEMO_LIST=",
		"PARLEY_DELIVERY_LEASE=5s", "PARLEY_DELIVERY_RETRY_FIRST=1s", "PARLEY_DELIVERY_RETRY_MAX=4s",
		"PARLEY_DELIVERY_TIMEOUT=8s", "PARLEY_DELIVERY_WORKERS=16", "PARLEY_DATABASE_QUERY_TIMEOUT=10s",
		"PARLEY_DIGEST_CHECK_EVERY=1s")
	cli := append(env, "PARLEY_DATA_DIR="+filepath.Join(dir, "cli"))
	setUp(t, cli)
	procs := []*parley{newParley(t, "parley-a", dir, env), newParley(t, "parley-b", dir, env)}
	for _, p := range procs {
		if err := p.start(t.Context()); err != nil {
			t.Fatalf("starting %s: %v", p.name, err)
		}
		t.Cleanup(func() { p.kill() })
	}
	admin, err := sqlx.Open("postgres", db.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	w := newWorkload(procs, sink)
	in := &injector{w: w, db: db, admin: admin, counts: map[string]int{}, cli: cli}
	start := time.Now()
	if err := runWorkload(t, w, in, admin, s); err != nil {
		t.Fatalf("%v (after %s)", err, time.Since(start).Round(time.Second))
	}
	faultTime := time.Since(start)
	drainStart := time.Now()
	drain(t, w, admin, cli)
	drainTime := time.Since(drainStart)

	rows := check(t, w, admin, in.dupBound())
	t.Log(report(w, in, rows, faultTime, drainTime))
	for _, p := range procs {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	}
	for _, r := range rows {
		if r.violations > 0 {
			t.Errorf("invariant violated: %s: %d (%s)", r.name, r.violations, strings.Join(r.examples, "; "))
		}
	}
}

// setUp creates the lists and their members with the CLI.
func setUp(t *testing.T, env []string) {
	t.Helper()
	mustRun(t, env, "", "migrate")
	mustRun(t, env, "", "list", "create", bigList, "--post-policy", "open")
	mustRun(t, env, "", "list", "create", smallList, "--post-policy", "open")
	mustRun(t, env, "", "list", "create", modList, "--owner", "owner@example.org")
	mustRun(t, env, "", "list", "create", cmdList)
	mustRun(t, env, "", "list", "create", bounceList)
	for list, n := range map[string]int{bigList: *bigSize, smallList: smallSize, bounceList: bounceSize} {
		var b strings.Builder
		for i := range n {
			b.WriteString(memberAddr(list, i) + "\n")
		}
		mustRun(t, env, b.String(), "member", "add", "--quiet", list, "--file", "-")
	}
	// The digest list's issues are cut every few posts, so that both
	// processes cut and send many of them while they are being killed.
	mustRun(t, env, "", "list", "set", digestList, "--digest-size", "2KB")
	for i, mode := range digestModes {
		mustRun(t, env, "", "member", "add", "--quiet", digestList, digestMember(i), "--delivery", mode)
	}
}

// digestModes are the delivery modes of the digest list's digest members.
var digestModes = []string{"digest", "digest", "digest-plain", "digest-plain", "summary", "summary"}

func digestMember(i int) string { return fmt.Sprintf("g%d@digest.example", i) }

// memberAddr is the i-th member of list.
func memberAddr(list string, i int) string {
	switch list {
	case bigList:
		return fmt.Sprintf("m%d@d%d.example", i, i%10)
	case smallList:
		return fmt.Sprintf("s%d@small.example", i)
	}
	return fmt.Sprintf("b%d@members.example", i)
}

// runWorkload runs the clients and the injector for the configured time
// and waits for every client to finish what it started.
func runWorkload(t *testing.T, w *workload, in *injector, admin *sqlx.DB, s int64) error {
	ctx, cancel := context.WithTimeout(t.Context(), *duration)
	defer cancel()
	var clients sync.WaitGroup
	spawn := func(i int, f func(*rand.Rand)) {
		clients.Add(1)
		go func() {
			defer clients.Done()
			f(rand.New(rand.NewPCG(uint64(s), uint64(i))))
		}()
	}
	for i := range *posters {
		spawn(i, func(r *rand.Rand) { w.poster(ctx, i, r) })
	}
	spawn(100, func(r *rand.Rand) { w.reader(ctx, bigList, r) })
	spawn(101, func(r *rand.Rand) { w.reader(ctx, bigList, r) })
	spawn(102, func(r *rand.Rand) { w.reader(ctx, smallList, r) })
	spawn(103, func(r *rand.Rand) { w.fetchAborter(ctx, bigList, r) })
	spawn(104, func(r *rand.Rand) { w.snapshots(ctx, admin) })
	err := in.run(ctx, rand.New(rand.NewPCG(uint64(s), 999)))
	cancel()
	clients.Wait()
	return err
}

// drain waits until nothing is left to do, confirms the joins whose
// confirmation arrived, sends the digest issue still filling, and waits
// again.
func drain(t *testing.T, w *workload, admin *sqlx.DB, cli []string) {
	t.Helper()
	waitIdle(t, admin)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, m := range w.led.all() {
		if m.kind != kindJoin || m.outcome != accepted {
			continue
		}
		addr := confirmAddress(w.sink, m.from)
		if addr == "" {
			continue // reported by the checks
		}
		reply := &mail{kind: "confirm", messageID: "c-" + m.messageID, from: m.from}
		deliver(w.smtpAddrs(), reply, m.from, addr, message(reply, addr, "", rng), false, rng)
		if reply.outcome != accepted {
			t.Errorf("confirming %s: %s", m.from, reply.outcome)
		}
	}
	waitIdle(t, admin)
	for range 100 {
		if out := runOut(t, cli, "digest", "send", digestList); strings.Contains(out, "nothing to send") {
			break
		}
	}
	waitIdle(t, admin)
}

// waitIdle waits up to 10 minutes for the queues to empty: no job, copy
// or stored service mail waiting or in hand.
func waitIdle(t *testing.T, admin *sqlx.DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var n int
		err := admin.Get(&n, `SELECT
			  (SELECT count(*) FROM outbound WHERE state IN ('pending', 'sending'))
			+ (SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending'))
			+ (SELECT count(*) FROM inbound WHERE state = 'new')`)
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues not empty after 10 minutes: %d left (%v)", n, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
