package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// post returns a ~3 KB list post with a unique Message-ID.
func post(list string, client, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Bench Client %d <client%d@example.org>\r\nTo: %s\r\n", client, client, list)
	fmt.Fprintf(&b, "Subject: benchmark post %d from client %d\r\n", n, client)
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <bench-%d-%d-%d@example.org>\r\n", time.Now().Format(time.RFC1123Z), client, n, time.Now().UnixNano())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog while the list server archives it.\r\n"
	for b.Len() < 3000 {
		b.WriteString(line)
	}
	return b.Bytes()
}

// sender is one SMTP client that reuses its connection for every post.
type sender struct {
	c *smtp.Client
}

func dialSender(addr string) (*sender, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Hello("bench.example"); err != nil {
		c.Close()
		return nil, err
	}
	return &sender{c: c}, nil
}

// send delivers one message and returns when the server has answered
// DATA (250 means committed).
func (s *sender) send(from, to string, msg []byte) error {
	if err := s.c.Mail(from, nil); err != nil {
		return err
	}
	if err := s.c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := s.c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

func (s *sender) close() { s.c.Quit(); s.c.Close() }

// ingestRate: posts/s acknowledged with 250 (and so committed) from
// concurrent clients sending 3 KB posts to one list with 1,000 members.
func (b *runner) ingestRate(ctx context.Context) error {
	// Intake alone: delivery is measured by the fan-out figures, and on
	// two cores it would compete with intake for the CPU.
	s, err := b.startServer(ctx, "ingest", "PARLEY_DELIVERY_WORKERS=0")
	if err != nil {
		return err
	}
	defer s.stop()
	const list = "bench@lists.example.org"
	if err := s.listWithMembers(ctx, list, 1000); err != nil {
		return err
	}
	listFor := func(client int) string { return list }
	if b.o.IngestLists > 1 {
		for i := 1; i < b.o.IngestLists; i++ {
			if err := s.listWithMembers(ctx, fmt.Sprintf("bench%d@lists.example.org", i), 100); err != nil {
				return err
			}
		}
		listFor = func(client int) string {
			if n := client % b.o.IngestLists; n > 0 {
				return fmt.Sprintf("bench%d@lists.example.org", n)
			}
			return list
		}
	}
	clients := b.o.IngestClients
	var ok, failed atomic.Int64
	deadline := time.Now().Add(b.o.IngestDuration)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			snd, err := dialSender(s.ready["smtp"])
			if err != nil {
				failed.Add(1)
				return
			}
			defer snd.close()
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				if err := snd.send(fmt.Sprintf("client%d@example.org", c), listFor(c), post(listFor(c), c, n)); err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	out, err := s.cli(ctx, nil, "list", "show", list, "--json")
	if err != nil {
		return err
	}
	b.logf("ingest: %d posts acknowledged, %d failed, %d clients, %s; archive: %s", ok.Load(), failed.Load(), clients, elapsed.Round(time.Millisecond), strings.Join(strings.Fields(out), " ")[:120])
	b.report("ingest_rate", float64(ok.Load())/elapsed.Seconds(), "posts/s")
	b.report("ingest_errors", float64(failed.Load()), "posts")
	return nil
}

// ackLatency: time from the end of DATA to the 250, one post at a time,
// to a list with 10,000 members.
func (b *runner) ackLatency(ctx context.Context) error {
	s, err := b.startServer(ctx, "latency", "PARLEY_DELIVERY_WORKERS=0")
	if err != nil {
		return err
	}
	defer s.stop()
	const list = "big@lists.example.org"
	if err := s.listWithMembers(ctx, list, 10000); err != nil {
		return err
	}
	snd, err := dialSender(s.ready["smtp"])
	if err != nil {
		return err
	}
	defer snd.close()
	var lat []time.Duration
	for n := range b.o.LatencyPosts {
		msg := post(list, 0, n)
		if err := snd.c.Mail("client0@example.org", nil); err != nil {
			return err
		}
		if err := snd.c.Rcpt(list, nil); err != nil {
			return err
		}
		w, err := snd.c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(msg); err != nil {
			return err
		}
		t0 := time.Now() // Close sends the final dot and waits for the reply
		if err := w.Close(); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	b.logf("latency: %d posts to a list of 10,000 members", len(lat))
	b.report("ack_latency_p50", quantile(lat, 0.50), "ms")
	b.report("ack_latency_p99", quantile(lat, 0.99), "ms")
	return nil
}
