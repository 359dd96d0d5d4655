package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
)

// batcher is intake's group commit. Posts accepted by concurrent sessions
// for the same list are written by one goroutine per shard of lists, as
// many per transaction as have queued up while the previous transaction
// was committing. Each post still gets its 250 only after the transaction
// holding its row, number, thread and delivery job has committed, but one
// WAL flush and one hold of the list lock serve the whole batch: without
// this, every post to a list waits for the previous post's flush.
type batcher struct {
	db      *sqlx.DB
	timeout time.Duration
	shards  []chan *batchItem
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// maxBatch bounds how many posts share one transaction.
const maxBatch = 64

type batchItem struct {
	ctx  context.Context
	post archive.Post
	done chan batchResult
}

type batchResult struct {
	st  archive.Stored
	err error
}

func newBatcher(db *sqlx.DB, shards int, timeout time.Duration) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{db: db, timeout: timeout, stop: cancel}
	for range shards {
		q := make(chan *batchItem, maxBatch)
		b.shards = append(b.shards, q)
		b.wg.Go(func() { b.run(ctx, q) })
	}
	return b
}

// close stops the writers once they are idle.
func (b *batcher) close() {
	b.stop()
	b.wg.Wait()
}

// write archives p and returns when its transaction has committed (or
// failed). A caller that gives up early may find later that the post was
// committed after all; intake is idempotent, so its retry finds it.
func (b *batcher) write(ctx context.Context, p archive.Post) (archive.Stored, error) {
	it := &batchItem{ctx: ctx, post: p, done: make(chan batchResult, 1)}
	q := b.shards[int(uint64(p.ListID)%uint64(len(b.shards)))]
	select {
	case q <- it:
	case <-ctx.Done():
		return archive.Stored{}, ctx.Err()
	}
	select {
	case r := <-it.done:
		return r.st, r.err
	case <-ctx.Done():
		return archive.Stored{}, ctx.Err()
	}
}

func (b *batcher) run(ctx context.Context, q chan *batchItem) {
	for {
		var batch []*batchItem
		select {
		case <-ctx.Done():
			return
		case it := <-q:
			batch = append(batch, it)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case it := <-q:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		b.commit(batch)
	}
}

// commit writes a batch in one transaction. If that fails, each post is
// tried again on its own, so that one bad post cannot fail the others.
func (b *batcher) commit(batch []*batchItem) {
	live := batch[:0]
	for _, it := range batch {
		if it.ctx.Err() == nil {
			live = append(live, it)
		}
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		defer cancel()
		posts := make([]archive.Post, len(live))
		for i, it := range live {
			posts[i] = it.post
		}
		// One statement: its own transaction, one round trip, one flush.
		sts, err := archive.InsertBatch(ctx, b.db, posts)
		if err == nil {
			for i, it := range live {
				it.done <- batchResult{st: sts[i]}
			}
			return
		}
	}
	for _, it := range live {
		st, err := archive.Insert(it.ctx, b.db, it.post)
		it.done <- batchResult{st: st, err: err}
	}
}
