package faults

import (
	"sort"
	"sync"
)

// outcome is what a client learned from parley about one piece of mail,
// over all its attempts.
type outcome int

const (
	// notSent: no attempt got as far as the end of DATA.
	notSent outcome = iota
	// refused: every attempt that sent the whole message got a 4xx or 5xx.
	refused
	// aborted: the client walked away in the middle of DATA.
	aborted
	// unknown: the connection broke after the final dot and no later
	// attempt settled it: parley may or may not have it.
	unknown
	// accepted: an attempt got 250.
	accepted
)

func (o outcome) String() string {
	return [...]string{"not sent", "refused", "aborted", "unknown", "accepted"}[o]
}

// kind is what a piece of mail was meant to do.
type kind string

const (
	kindPost   kind = "post"   // to an open list: archived and sent to every member
	kindHeld   kind = "held"   // a non-member's post to a members list: held
	kindJoin   kind = "join"   // to -join: a confirmation mail, confirmed at the end
	kindBounce kind = "bounce" // a DSN to a VERP address: one bounce event
)

// mail is one piece of the workload and what became of it.
type mail struct {
	kind      kind
	list      string // the list's address
	messageID string // without <>
	from      string // the author (for joins, the joiner; for bounces, the member bounced)
	outcome   outcome
}

// ledger is everything the clients sent, for the checks at the end.
type ledger struct {
	mu    sync.Mutex
	mails []*mail
}

func (l *ledger) add(m *mail) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mails = append(l.mails, m)
}

func (l *ledger) all() []*mail {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*mail(nil), l.mails...)
}

// counts tallies outcomes per kind, for the report.
func (l *ledger) counts() map[kind]map[outcome]int {
	got := map[kind]map[outcome]int{}
	for _, m := range l.all() {
		if got[m.kind] == nil {
			got[m.kind] = map[outcome]int{}
		}
		got[m.kind][m.outcome]++
	}
	return got
}

func sortedKinds(m map[kind]map[outcome]int) []kind {
	var ks []kind
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}
