package imapd

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/notify"
)

// hub tells sessions that a list may have new posts. It is fed by
// NOTIFY archive (payload: the list id), which every parley process sends
// after archiving, so a post accepted anywhere reaches every IDLE session
// at once. A notification is only a hint to look: sessions read the
// list's counter from the database, and also look every poll interval in
// case one was lost.
//
// On a notification the hub reads the list's counter once and keeps it,
// so the sessions it wakes need not each ask: with a hundred readers on a
// busy list that is one query per post instead of a hundred.
type hub struct {
	mu   sync.Mutex
	subs map[int64]map[chan struct{}]struct{}
	next map[int64]int64 // list → next_article, as last read after a notification
}

func newHub() *hub {
	return &hub{subs: map[int64]map[chan struct{}]struct{}{}, next: map[int64]int64{}}
}

// known returns the list's next article number as the hub last read it.
func (h *hub) known(list int64) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.next[list]
	return n, ok
}

// learn records a list's next article number; it only grows.
func (h *hub) learn(list, next int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next[list] = max(h.next[list], next)
}

// forget drops what the hub knows (the listener reconnected: it may have
// missed news, so sessions ask the database).
func (h *hub) forget() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.next)
}

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

// refresh reads a list's counter for the sessions about to be woken, when
// any session follows the list. After it, what the hub knows of the list
// covers the notified post, or it knows nothing and sessions ask.
func (h *hub) refresh(db *sqlx.DB, list int64, timeout time.Duration) {
	h.mu.Lock()
	followed := len(h.subs[list]) > 0
	h.mu.Unlock()
	if !followed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	next, err := lists.NextArticle(ctx, db, list)
	if err != nil {
		// What the hub knows may now be behind: the woken sessions ask.
		h.mu.Lock()
		delete(h.next, list)
		h.mu.Unlock()
		return
	}
	h.learn(list, next)
}

// listen feeds the hub from NOTIFY archive until the returned listener
// is closed. Without a listener, sessions poll.
func (h *hub) listen(dsn string, db *sqlx.DB, timeout time.Duration, log *slog.Logger) *notify.Listener {
	return notify.Listen(dsn, notify.Archive, log, func(payload string) {
		if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
			h.refresh(db, id, timeout)
			h.wake(id, false)
		}
	}, func() {
		// What the hub knew may be behind: sessions ask the database.
		h.forget()
		h.wake(0, true)
	})
}
