package imapd

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/notify"
)

// hub tells sessions that a list may have new posts. It is fed by
// NOTIFY archive (payload: the list id), which every parley process sends
// after archiving, so a post accepted anywhere reaches every IDLE session
// at once. A notification is only a hint to look: sessions read the
// list's counter from the database, and also look every poll interval in
// case one was lost.
type hub struct {
	mu   sync.Mutex
	subs map[int64]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: map[int64]map[chan struct{}]struct{}{}} }

// subscribe returns a channel that receives a token when list may have
// news, and the function that ends the subscription.
func (h *hub) subscribe(list int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[list] == nil {
		h.subs[list] = map[chan struct{}]struct{}{}
	}
	h.subs[list][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs[list], ch)
		if len(h.subs[list]) == 0 {
			delete(h.subs, list)
		}
	}
}

// wake signals the subscribers of list (every list when all is set: the
// listener reconnected and may have missed notifications). It never
// blocks: a subscriber with a token pending needs no second one.
func (h *hub) wake(list int64, all bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, chans := range h.subs {
		if !all && id != list {
			continue
		}
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// listen feeds the hub from NOTIFY archive on its own connection until
// the returned listener is closed. Without a listener, sessions poll.
func (h *hub) listen(dsn string, log *slog.Logger) *pq.Listener {
	l := pq.NewListener(dsn, time.Second, 30*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			log.Debug("archive notification listener", "event", "listener", "err", err)
		}
	})
	go func() {
		// Listen waits for the connection: off the caller's path, so a
		// database that is down does not hold up the server's start.
		if err := l.Listen(notify.Archive); err != nil {
			log.Warn("cannot listen for archive notifications; IMAP sessions poll", "event", "listener", "err", err)
		} else {
			h.wake(0, true) // what was notified before LISTEN took effect was missed
		}
		for n := range l.Notify {
			if n == nil { // reconnected: anything may have happened meanwhile
				h.wake(0, true)
				continue
			}
			if id, err := strconv.ParseInt(n.Extra, 10, 64); err == nil {
				h.wake(id, false)
			}
		}
	}()
	return l
}
