package faults

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// The lists of the workload.
const (
	bigList    = "big@lists.example.org"   // open, the large fan-out
	smallList  = "small@lists.example.org" // open, 50 members, most posts
	modList    = "mod@lists.example.org"   // members only: outsiders' posts are held
	cmdList    = "cmd@lists.example.org"   // joined by email with confirmation
	bounceList = "bnc@lists.example.org"   // its members' bounces are counted
	smallSize  = 50
	digestList = smallList // also has members who take digests (digestMembers)
	bounceSize = 400
	msgDomain  = "faults.test" // Message-IDs of the workload end in it
)

// workload is the clients: posters, IMAP readers, what they saw.
type workload struct {
	procs []*parley
	sink  *smtpsink.Sink
	led   ledger

	seq        atomic.Int64
	nextBounce atomic.Int64

	mu         sync.Mutex
	last       map[string]string            // list → a recently accepted Message-ID, to reply to
	copies     map[string]map[string]int    // Message-ID → recipient → copies at the sink
	digests    map[string]map[string]int    // digest issue "volume.number" → recipient → copies at the sink
	seen       map[string]map[uint32]string // list → IMAP UID → Message-ID
	articles   map[string]map[int64]string  // list → article → Message-ID, from snapshots
	violations []string

	imapSessions, imapFetched, fetchAborts, dataAborts atomic.Int64
}

func newWorkload(procs []*parley, sink *smtpsink.Sink) *workload {
	w := &workload{procs: procs, sink: sink, last: map[string]string{}, copies: map[string]map[string]int{},
		digests: map[string]map[string]int{},
		seen:    map[string]map[uint32]string{}, articles: map[string]map[int64]string{}}
	// Copies of the workload's posts are counted, not kept; notices
	// (confirmations, welcomes, moderator mail) are kept for reading.
	sink.Keep(func(m smtpsink.Message) bool {
		id := messageID(m.Data)
		if issue, ok := digestIssue(id); ok {
			w.countDigest(issue, m.To)
			return false
		}
		if !strings.HasSuffix(id, "@"+msgDomain) {
			return true
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.copies[id] == nil {
			w.copies[id] = map[string]int{}
		}
		for _, r := range m.To {
			w.copies[id][r]++
		}
		return false
	})
	return w
}

// digestIssue reads the issue ("volume.number") from the Message-ID of
// a copy of the digest list's digest: digest.V.N.FORMAT.small@….
func digestIssue(id string) (string, bool) {
	f := strings.Split(id, ".")
	if len(f) < 5 || f[0] != "digest" || !strings.HasSuffix(id, "."+digestList) {
		return "", false
	}
	return f[1] + "." + f[2], true
}

func (w *workload) countDigest(issue string, rcpts []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.digests[issue] == nil {
		w.digests[issue] = map[string]int{}
	}
	for _, r := range rcpts {
		w.digests[issue][r]++
	}
}

// messageID returns the Message-ID of raw, without <>.
func messageID(raw []byte) string {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	if err != nil && h == nil {
		return ""
	}
	return strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

func (w *workload) violate(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

func (w *workload) smtpAddrs() []string { return []string{w.procs[0].smtp, w.procs[1].smtp} }

// poster sends mail until ctx ends; the mail it has begun it finishes.
func (w *workload) poster(ctx context.Context, i int, rng *rand.Rand) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(200+rng.IntN(800)) * time.Millisecond):
		}
		w.sendNext(i, rng)
	}
}

// sendNext makes one piece of mail of a random kind and delivers it.
func (w *workload) sendNext(i int, rng *rand.Rand) {
	n := w.seq.Add(1)
	m := &mail{kind: kindPost, messageID: fmt.Sprintf("m%d.%d@%s", n, rng.Uint32(), msgDomain),
		from: fmt.Sprintf("poster%d@example.org", i)}
	var from, rcpt string
	var data []byte
	abort := false
	switch r := rng.IntN(100); {
	case r < 60 || r >= 92:
		m.list = smallList
		if r < 15 {
			m.list = bigList
		}
		abort = r >= 92
		from, rcpt = m.from, m.list
		data = message(m, m.list, w.replyTo(m.list, rng), rng)
	case r < 72:
		m.kind, m.list = kindHeld, modList
		m.from = fmt.Sprintf("outsider%d@outside.example", n)
		from, rcpt = m.from, m.list
		data = message(m, m.list, "", rng)
	case r < 82:
		m.kind, m.list = kindJoin, cmdList
		m.from = fmt.Sprintf("joiner%d@joiners.example", n)
		from, rcpt = m.from, "cmd-join@lists.example.org"
		data = message(m, rcpt, "", rng)
	default:
		b := w.nextBounce.Add(1)
		if b > bounceSize {
			return
		}
		m.kind, m.list = kindBounce, bounceList
		m.from = fmt.Sprintf("b%d@members.example", b-1)
		from, rcpt = "", mailaddr.VERP(bounceList, m.from)
		data = dsn(m.messageID, rcpt, m.from)
	}
	w.led.add(m)
	deliver(w.smtpAddrs(), m, from, rcpt, data, abort, rng)
	if abort {
		w.dataAborts.Add(1)
	}
	if m.outcome == accepted && m.kind == kindPost {
		w.mu.Lock()
		w.last[m.list] = m.messageID
		w.mu.Unlock()
	}
}

// replyTo returns, for a third of the posts, a post of the list to reply
// to (threading under faults).
func (w *workload) replyTo(list string, rng *rand.Rand) string {
	if rng.IntN(3) != 0 {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[list]
}
