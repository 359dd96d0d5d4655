package notify

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// TestCoalescing: a burst of pokes becomes one notification per channel
// and payload, and stopping sends what is still pending.
func TestCoalescing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	sent := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	n := New(ctx, func(_ context.Context, channel, payload string) error {
		mu.Lock()
		defer mu.Unlock()
		sent[channel+":"+payload]++
		time.Sleep(10 * time.Millisecond) // a slow database: pokes pile up meanwhile
		return nil
	}, slog.New(slog.DiscardHandler))
	for range 100 {
		n.Poke(Outbound, "")
		n.Poke(Archive, "7")
	}
	n.Poke(Archive, "8")
	cancel()
	<-n.Done()
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []string{"outbound:", "archive:7", "archive:8"} {
		if sent[k] < 1 || sent[k] > 3 {
			t.Errorf("%s sent %d times for a burst, want 1 to 3", k, sent[k])
		}
	}
}

func TestNilNotifier(t *testing.T) {
	t.Parallel()
	var n *Notifier
	n.Poke(Archive, "1") // must not panic: a notifier is optional
}
