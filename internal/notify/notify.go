// Package notify owns the wake-up calls parley sends between processes
// through PostgreSQL's NOTIFY: "a post was archived in list N" (channel
// archive, for IMAP sessions) and "there is outbound work" (channel
// outbound, for delivery workers).
//
// Notifications are sent after the transaction that made the change has
// committed, from a goroutine, coalesced per channel and payload. The
// reason is PostgreSQL's implementation: a transaction that NOTIFYs holds a
// database-wide lock from just before its commit until after its WAL
// flush, so notifying inside every intake transaction would serialise all
// of them behind one fsync at a time. A notification is a hint, never the
// only way work is found: listeners also poll, so one lost in a crash
// between commit and send only delays the work until the next poll.
package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lib/pq"
)

// Channels.
const (
	Archive  = "archive"
	Outbound = "outbound"
)

type key struct{ channel, payload string }

// Notifier sends coalesced notifications. The zero value is not usable;
// call New.
type Notifier struct {
	send    func(ctx context.Context, channel, payload string) error
	log     *slog.Logger
	mu      sync.Mutex
	pending map[key]struct{}
	wake    chan struct{}
	done    chan struct{}
}

// New returns a notifier that sends with send (normally a
// `SELECT pg_notify($1, $2)` on the pool) and runs until ctx ends. Pokes
// made within the same few milliseconds become one notification each.
func New(ctx context.Context, send func(ctx context.Context, channel, payload string) error, log *slog.Logger) *Notifier {
	n := &Notifier{send: send, log: log, pending: map[key]struct{}{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go n.run(ctx)
	return n
}

// Poke asks for a notification on channel with payload. It never blocks.
func (n *Notifier) Poke(channel, payload string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.pending[key{channel, payload}] = struct{}{}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Done is closed when the notifier has stopped (after a last flush).
func (n *Notifier) Done() <-chan struct{} { return n.done }

func (n *Notifier) run(ctx context.Context) {
	defer close(n.done)
	for {
		select {
		case <-ctx.Done():
			n.flush(context.WithoutCancel(ctx))
			return
		case <-n.wake:
		}
		// A short pause lets a burst of commits share one notification.
		time.Sleep(2 * time.Millisecond)
		n.flush(context.WithoutCancel(ctx))
	}
}

func (n *Notifier) flush(ctx context.Context) {
	n.mu.Lock()
	batch := n.pending
	n.pending = map[key]struct{}{}
	n.mu.Unlock()
	for k := range batch {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.send(sctx, k.channel, k.payload)
		cancel()
		if err != nil {
			n.log.Warn("notification not sent; listeners will find the work when they poll",
				"event", "notify_failed", "channel", k.channel, "err", err)
		}
	}
}

// Listener follows one channel on a connection of its own.
type Listener struct{ l *pq.Listener }

// Listen follows channel over a connection of its own to dsn and calls on
// with each notification's payload, and missed whenever notifications
// may have been missed: once LISTEN has taken effect (anything sent
// before was not heard) and after every reconnection. Both run on the
// listener's goroutine, one at a time. It connects in the background, so
// a database that is down does not hold up the caller; meanwhile, and
// whenever the connection is lost, the caller's own polling finds the
// work.
func Listen(dsn, channel string, log *slog.Logger, on func(payload string), missed func()) *Listener {
	l := pq.NewListener(dsn, time.Second, 30*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			log.Debug("notification listener", "event", "listener", "channel", channel, "err", err)
		}
	})
	go func() {
		if err := l.Listen(channel); err != nil {
			log.Warn("cannot listen for notifications; polling", "event", "listener", "channel", channel, "err", err)
		} else {
			missed()
		}
		for n := range l.Notify {
			if n == nil { // reconnected: anything may have happened meanwhile
				missed()
				continue
			}
			on(n.Extra)
		}
	}()
	return &Listener{l: l}
}

// Close stops listening.
func (l *Listener) Close() error { return l.l.Close() }
