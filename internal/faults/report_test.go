package faults

import (
	"fmt"
	"strings"
	"time"
)

// workers is PARLEY_DELIVERY_WORKERS of the processes under test.
const workers = 16

// dupBound is how many duplicate copies the faults may cause: each event
// that takes delivery state away from a process (its death, its database
// stopping or its sessions cut) can repeat at most the copies it had in
// flight plus the results it had not yet recorded, each at most workers.
func (in *injector) dupBound() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := in.counts
	events := c["kill -9 one parley"] + 2*(c["kill -9 both parleys"]+c["PostgreSQL stopped (fast)"]+
		c["PostgreSQL crashed (SIGQUIT)"]+c["PostgreSQL connections cut"])
	return 2 * workers * events
}

// report is the printed summary: faults, workload, invariants.
func report(w *workload, in *injector, rows []*row, faultTime, drainTime time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n== faults injected over %s (drained in %s)\n", faultTime.Round(time.Second), drainTime.Round(time.Second))
	for _, l := range in.report() {
		fmt.Fprintf(&b, "   %s\n", l)
	}
	fmt.Fprintf(&b, "   %-34s %6d\n   %-34s %6d\n", "client gone mid-DATA", w.dataAborts.Load(),
		"client gone mid-FETCH", w.fetchAborts.Load())
	fmt.Fprintf(&b, "== workload\n")
	counts := w.led.counts()
	for _, k := range sortedKinds(counts) {
		var parts []string
		for o := notSent; o <= accepted; o++ {
			if n := counts[k][o]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", o, n))
			}
		}
		fmt.Fprintf(&b, "   %-8s %s\n", k, strings.Join(parts, ", "))
	}
	w.mu.Lock()
	copies, pairs := 0, 0
	for _, r := range w.copies {
		pairs += len(r)
		for _, n := range r {
			copies += n
		}
	}
	w.mu.Unlock()
	fmt.Fprintf(&b, "   copies at the sink %d (duplicates %d, bound %d); IMAP sessions %d, messages fetched %d\n",
		copies, copies-pairs, in.dupBound(), w.imapSessions.Load(), w.imapFetched.Load())
	fmt.Fprintf(&b, "== invariants\n   %-48s %9s %10s\n", "invariant", "checked", "violations")
	for _, r := range rows {
		status := "ok"
		if r.violations > 0 {
			status = "VIOLATED"
		}
		fmt.Fprintf(&b, "   %-48s %9d %10d  %s\n", r.name, r.checked, r.violations, status)
	}
	return b.String()
}
