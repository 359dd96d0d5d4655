package connlimit

import (
	"sync"
	"time"
)

// Failures slows password guessing, for any listener that checks
// passwords (IMAP, the web archive): every failed login is answered
// after Delay, and a client IP with too many recent failures is refused
// without its password being checked.
type Failures struct {
	Delay time.Duration

	mu    sync.Mutex
	fails map[string][]time.Time
	max   int
	win   time.Duration
}

// NewFailures allows 10 failures per client IP in 5 minutes.
func NewFailures(delay time.Duration) *Failures {
	return &Failures{fails: map[string][]time.Time{}, Delay: delay, max: 10, win: 5 * time.Minute}
}

// Blocked reports whether ip has used up its failures.
func (a *Failures) Blocked(ip string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recent(ip, now)) >= a.max
}

// Failed records a failure by ip.
func (a *Failures) Failed(ip string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.fails) > 100_000 {
		a.fails = map[string][]time.Time{} // bounded memory beats perfect memory
	}
	a.fails[ip] = append(a.recent(ip, now), now)
}

func (a *Failures) recent(ip string, now time.Time) []time.Time {
	ts := a.fails[ip]
	for len(ts) > 0 && now.Sub(ts[0]) > a.win {
		ts = ts[1:]
	}
	if len(ts) == 0 {
		delete(a.fails, ip)
		return nil
	}
	a.fails[ip] = ts
	return ts
}
