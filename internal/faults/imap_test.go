package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// reader follows list over IMAP until ctx ends: it selects the list,
// fetches what is new, waits in IDLE for EXISTS (or 5 s), and again. Each
// UID must keep the Message-ID it was first seen with. A broken session
// (parley killed, database gone) is opened again.
func (w *workload) reader(ctx context.Context, list string, rng *rand.Rand) {
	for ctx.Err() == nil {
		p := w.procs[rng.IntN(len(w.procs))]
		w.readSession(ctx, p.imap, list)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
		}
	}
}

func (w *workload) readSession(ctx context.Context, addr, list string) {
	exists := make(chan struct{}, 1)
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- struct{}{}:
				default:
				}
			}
		}},
	})
	if err != nil {
		return
	}
	defer c.Close()
	// Every step has a deadline: a session that makes no progress for
	// 30 s is closed (and would show as a stuck client in the report).
	watchdog := time.AfterFunc(30*time.Second, func() { c.Close() })
	defer watchdog.Stop()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login("anonymous", "faults").Wait(); err != nil {
		return
	}
	if _, err := c.Select(list, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return
	}
	w.imapSessions.Add(1)
	var last imap.UID
	for ctx.Err() == nil {
		watchdog.Reset(30 * time.Second)
		msgs, err := c.Fetch(imap.UIDSet{{Start: last + 1, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
		if err != nil {
			return
		}
		for _, m := range msgs {
			if m.UID <= last || m.Envelope == nil {
				continue
			}
			w.sawUID(list, uint32(m.UID), m.Envelope.MessageID)
			last = max(last, m.UID)
		}
		idle, err := c.Idle()
		if err != nil {
			return
		}
		select {
		case <-exists:
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
		}
		if idle.Close() != nil || idle.Wait() != nil {
			return
		}
	}
}

// sawUID records what a reader saw; a UID that changes its message is a
// violation (article numbers are forever).
func (w *workload) sawUID(list string, uid uint32, msgid string) {
	w.imapFetched.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[list] == nil {
		w.seen[list] = map[uint32]string{}
	}
	if old, ok := w.seen[list][uid]; ok && old != msgid {
		w.violations = append(w.violations, fmt.Sprintf("IMAP %s UID %d was <%s>, now <%s>", list, uid, old, msgid))
		return
	}
	w.seen[list][uid] = msgid
}

// fetchAborter opens sessions that ask for every message of list and hang
// up in the middle of the answer, until ctx ends.
func (w *workload) fetchAborter(ctx context.Context, list string, rng *rand.Rand) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(500+rng.IntN(2000)) * time.Millisecond):
		}
		if abortFetch(w.procs[rng.IntN(len(w.procs))].imap, list, 1+rng.IntN(64<<10)) {
			w.fetchAborts.Add(1)
		}
	}
}

// abortFetch logs in, starts FETCH 1:* BODY[] and closes the connection
// after n bytes of the answer; it reports whether it got that far.
func abortFetch(addr, list string, n int) bool {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		return false
	}
	for _, cmd := range []string{"a LOGIN anonymous faults", "b SELECT " + list} {
		tag, _, _ := strings.Cut(cmd, " ")
		if _, err := fmt.Fprintf(conn, "%s\r\n", cmd); err != nil {
			return false
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return false
			}
			if strings.HasPrefix(line, tag+" OK") {
				break
			}
			if strings.HasPrefix(line, tag+" ") {
				return false
			}
		}
	}
	if _, err := fmt.Fprintf(conn, "c FETCH 1:* BODY.PEEK[]\r\n"); err != nil {
		return false
	}
	conn.SetDeadline(time.Now().Add(3 * time.Second)) // a small list answers in fewer bytes
	got, _ := io.CopyN(io.Discard, r, int64(n))
	return got == int64(n)
}
