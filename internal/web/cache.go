package web

import (
	"container/list"
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
)

// pageCache keeps rendered answers by URL, each with the ETag it was
// rendered for: a list's pages change only when its counter moves, so a
// page asked for again with the same ETag is the same page. It holds only
// what anyone may see (no visitor logged in, a public list), and at most
// maxBytes, dropping the least recently used. It is derived data: losing
// it costs a render.
type pageCache struct {
	mu       sync.Mutex
	byKey    map[string]*list.Element
	lru      *list.List
	bytes    int
	maxBytes int
}

type cached struct {
	key, etag, ctype string
	body             []byte
}

func newPageCache(maxBytes int) *pageCache {
	return &pageCache{byKey: map[string]*list.Element{}, lru: list.New(), maxBytes: maxBytes}
}

// get returns the answer kept for key at etag.
func (c *pageCache) get(key, etag string) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok || e.Value.(cached).etag != etag {
		return cached{}, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(cached), true
}

// put keeps an answer, replacing any older one for key.
func (c *pageCache) put(v cached) {
	if len(v.body) > c.maxBytes/16 {
		return // a huge page would push out many others
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[v.key]; ok {
		c.bytes -= len(e.Value.(cached).body)
		c.lru.Remove(e)
	}
	c.byKey[v.key] = c.lru.PushFront(v)
	c.bytes += len(v.body)
	for c.bytes > c.maxBytes {
		old := c.lru.Back()
		c.lru.Remove(old)
		o := old.Value.(cached)
		delete(c.byKey, o.key)
		c.bytes -= len(o.body)
	}
}

// cacheable reports whether the answer being written for r may be kept:
// it has an ETag (a list's page or feed) and is the same for everyone.
func (a *Archive) cacheable(w http.ResponseWriter, r *http.Request) bool {
	return w.Header().Get("ETag") != "" && w.Header().Get("Vary") == "" && a.session(r) == ""
}

// fromCache writes the kept answer for r, if there is one for etag.
func (a *Archive) fromCache(w http.ResponseWriter, r *http.Request, etag string) bool {
	if a.session(r) != "" || w.Header().Get("Vary") != "" {
		return false
	}
	v, ok := a.cache.get(r.URL.RequestURI(), etag)
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", v.ctype)
	if r.Method != http.MethodHead {
		w.Write(v.body)
	}
	return true
}

// keep stores an answer just rendered for r.
func (a *Archive) keep(w http.ResponseWriter, r *http.Request, ctype string, body []byte) {
	if a.cacheable(w, r) {
		a.cache.put(cached{key: r.URL.RequestURI(), etag: w.Header().Get("ETag"), ctype: ctype, body: body})
	}
}

// listTTL is how long a list row read for a request is used again: a
// page may show a new post up to this late, and in exchange a polled
// page costs no query at all.
const listTTL = time.Second

// lists keeps list rows by address for listTTL, and each list's newest
// post time by its article counter (it cannot change while the counter
// does not).
type listCache struct {
	mu     sync.Mutex
	rows   map[string]listRow
	newest map[int64]newestPost
}

type listRow struct {
	l  lists.List
	at time.Time
}

type newestPost struct {
	counter int64
	at      time.Time
}

// getList returns the list at address, from the cache when fresh.
func (a *Archive) getList(ctx context.Context, address string) (lists.List, error) {
	c := &a.lists
	c.mu.Lock()
	row, ok := c.rows[address]
	c.mu.Unlock()
	if ok && time.Since(row.at) < listTTL {
		return row.l, nil
	}
	l, err := lists.Get(ctx, a.o.DB, address)
	if err != nil {
		return l, err
	}
	c.mu.Lock()
	if c.rows == nil || len(c.rows) > 10000 {
		c.rows = map[string]listRow{}
	}
	c.rows[address] = listRow{l: l, at: time.Now()}
	c.mu.Unlock()
	return l, nil
}

// lastPost returns when the list's newest post arrived, asking the
// database once per value of the list's counter.
func (a *Archive) lastPost(ctx context.Context, l lists.List) (time.Time, error) {
	c := &a.lists
	c.mu.Lock()
	n, ok := c.newest[l.ID]
	c.mu.Unlock()
	if ok && n.counter == l.NextArticle {
		return n.at, nil
	}
	t, err := archive.LastPost(ctx, a.o.DB, l.ID)
	if err != nil {
		return t, err
	}
	c.mu.Lock()
	if c.newest == nil || len(c.newest) > 10000 {
		c.newest = map[int64]newestPost{}
	}
	c.newest[l.ID] = newestPost{counter: l.NextArticle, at: t}
	c.mu.Unlock()
	return t, nil
}
