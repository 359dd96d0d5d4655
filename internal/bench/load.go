package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The load test (make load, not part of make bench): LoadSMTP sessions
// posting and LoadIMAP sessions reading for LoadDuration against one
// parley, all at once. Half the IMAP sessions wait in IDLE; of the rest a
// fifth are slow readers that fetch the whole archive at 40 KB/s (the
// server must not buffer what they do not read). Figures: latencies,
// protocol errors, lost posts, peak RSS.
const (
	loadList     = "load@lists.example.org"
	loadArchive  = 2000 // messages imported before the run, for the readers
	loadMembers  = 10   // the posts' fan-out
	slowReadRate = 4 << 10
)

// loadStats collects what the clients saw.
type loadStats struct {
	mu       sync.Mutex
	smtpLat  []time.Duration
	imapLat  []time.Duration
	accepted []string // Message-IDs acknowledged with 250
	errs     map[string]int
	examples []string
	wakeups  map[int]int // IDLE session → EXISTS seen
	slowRead int64
}

func (st *loadStats) fail(what string, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.errs[what]++
	if len(st.examples) < 5 {
		st.examples = append(st.examples, fmt.Sprintf("%s: %v", what, err))
	}
}

func (st *loadStats) errors() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, v := range st.errs {
		n += v
	}
	return n
}

func (b *runner) load(ctx context.Context) error {
	sk, err := startSink()
	if err != nil {
		return err
	}
	defer sk.srv.Close()
	s, err := b.startServer(ctx, "load", "PARLEY_RELAY=smtp://"+sk.addr, "PARLEY_IMAP_MAX_CONNECTIONS_PER_IP=1000")
	if err != nil {
		return err
	}
	defer s.stop()
	if err := s.listWithMembers(ctx, loadList, loadMembers); err != nil {
		return err
	}
	mbox := filepath.Join(b.o.WorkDir, "load.mbox")
	if _, err := generateMbox(mbox, loadArchive, 7, genOptions{list: loadList, word: imapWord}); err != nil {
		return err
	}
	if _, err := s.cli(ctx, nil, "archive", "import", loadList, mbox); err != nil {
		return err
	}
	st := &loadStats{errs: map[string]int{}, wakeups: map[int]int{}}
	rss := sampleRSS(s.cmd.Process.Pid)
	lctx, cancel := context.WithTimeout(ctx, b.o.LoadDuration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range b.o.LoadSMTP {
		wg.Go(func() { loadPoster(lctx, s.ready["smtp"], i, st) })
	}
	for i := range b.o.LoadIMAP {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		switch {
		case i%2 == 0:
			wg.Go(func() { loadIdler(lctx, s.ready["imap"], i, st) })
		case i%10 == 1:
			wg.Go(func() { loadSlowReader(lctx, s.ready["imap"], st) })
		default:
			wg.Go(func() { loadReader(lctx, s.ready["imap"], rng, st) })
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	peak := rss.stop()
	lost, err := lostPosts(ctx, s, st.accepted)
	if err != nil {
		return err
	}
	b.loadReport(st, elapsed, peak, lost)
	if n := st.errors(); n > 0 || lost > 0 {
		return fmt.Errorf("%d protocol errors (%v), %d lost posts; first: %s", n, st.errs, lost, strings.Join(st.examples, "; "))
	}
	return nil
}

func (b *runner) loadReport(st *loadStats, elapsed time.Duration, peakMB float64, lost int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	idle, woken := 0, 0
	for _, n := range st.wakeups {
		idle++
		if n > 0 {
			woken++
		}
	}
	b.logf("load: %d SMTP and %d IMAP sessions for %s: %d posts acknowledged (%.0f/s), %d IMAP commands, %d of %d IDLE sessions woken, slow readers read %.1f MB",
		b.o.LoadSMTP, b.o.LoadIMAP, elapsed.Round(time.Second), len(st.accepted), float64(len(st.accepted))/elapsed.Seconds(),
		len(st.imapLat), woken, idle, float64(st.slowRead)/1e6)
	b.report("load_posts_per_s", float64(len(st.accepted))/elapsed.Seconds(), "posts/s")
	b.report("load_smtp_ack_p50_ms", quantile(st.smtpLat, 0.50), "ms")
	b.report("load_smtp_ack_p99_ms", quantile(st.smtpLat, 0.99), "ms")
	b.report("load_imap_cmd_p50_ms", quantile(st.imapLat, 0.50), "ms")
	b.report("load_imap_cmd_p99_ms", quantile(st.imapLat, 0.99), "ms")
	b.report("load_idle_sessions_woken", float64(woken), "sessions")
	b.report("load_protocol_errors", float64(len(st.errs)), "kinds")
	b.report("load_lost_posts", float64(lost), "posts")
	b.report("load_peak_rss_MB", peakMB, "MB")
}

// loadPoster keeps one SMTP session and posts on it with a pause of
// 0.5–1.5 s between posts, timing each from MAIL FROM to the 250.
func loadPoster(ctx context.Context, addr string, i int, st *loadStats) {
	snd, err := dialSender(addr)
	if err != nil {
		st.fail("smtp connect", err)
		return
	}
	defer snd.close()
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(500+rng.IntN(1000)) * time.Millisecond):
		}
		msg := post(loadList, i, n)
		t := time.Now()
		if err := snd.send(fmt.Sprintf("client%d@example.org", i), loadList, msg); err != nil {
			st.fail("smtp post", err)
			return
		}
		lat := time.Since(t)
		st.mu.Lock()
		st.smtpLat = append(st.smtpLat, lat)
		st.accepted = append(st.accepted, messageIDOf(msg))
		st.mu.Unlock()
	}
}

func messageIDOf(msg []byte) string {
	_, rest, _ := strings.Cut(string(msg), "Message-ID: <")
	id, _, _ := strings.Cut(rest, ">")
	return id
}

// loadSession opens an IMAP session on the load list.
func loadSession(addr string, opts *imapclient.Options) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Login("anonymous", "load").Wait(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Select(loadList, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// loadIdler waits in IDLE for the whole run, counting EXISTS updates.
func loadIdler(ctx context.Context, addr string, i int, st *loadStats) {
	var mu sync.Mutex
	seen := 0
	c, err := loadSession(addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				mu.Lock()
				seen++
				mu.Unlock()
			}
		}}})
	if err != nil {
		st.fail("imap idle session", err)
		return
	}
	defer c.Close()
	idle, err := c.Idle()
	if err != nil {
		st.fail("imap IDLE", err)
		return
	}
	<-ctx.Done()
	if err := idle.Close(); err != nil {
		st.fail("imap DONE", err)
	} else if err := idle.Wait(); err != nil {
		st.fail("imap IDLE end", err)
	}
	mu.Lock()
	defer mu.Unlock()
	st.mu.Lock()
	st.wakeups[i] = seen
	st.mu.Unlock()
}

// loadReader runs a mix of reader commands with 0.1–0.5 s between them:
// a page of envelopes, one whole message, a text search, NOOP.
func loadReader(ctx context.Context, addr string, rng *rand.Rand, st *loadStats) {
	c, err := loadSession(addr, nil)
	if err != nil {
		st.fail("imap session", err)
		return
	}
	defer c.Close()
	for {
		select {
		case <-ctx.Done():
			c.Logout().Wait()
			return
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
		}
		t := time.Now()
		var err error
		switch r := rng.IntN(100); {
		case r < 40:
			from := imap.UID(1 + rng.IntN(loadArchive-50))
			_, err = c.Fetch(imap.UIDSet{{Start: from, Stop: from + 49}}, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
		case r < 70:
			uid := imap.UID(1 + rng.IntN(loadArchive))
			_, err = c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		case r < 85:
			// The peers' benchmark word: in a few percent of the posts.
			_, err = c.UIDSearch(&imap.SearchCriteria{Text: []string{imapWord}}, nil).Wait()
		default:
			err = c.Noop().Wait()
		}
		if err != nil {
			st.fail("imap command", err)
			return
		}
		st.mu.Lock()
		st.imapLat = append(st.imapLat, time.Since(t))
		st.mu.Unlock()
	}
}

// loadSlowReader asks for every message and reads the answer at 40 KB/s
// until the run ends.
func loadSlowReader(ctx context.Context, addr string, st *loadStats) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		st.fail("imap slow reader", err)
		return
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "a LOGIN anonymous slow\r\nb EXAMINE %s\r\nc FETCH 1:* BODY.PEEK[]\r\n", loadList)
	buf := make([]byte, slowReadRate/10)
	for ctx.Err() == nil {
		n, err := io.ReadFull(r, buf)
		st.mu.Lock()
		st.slowRead += int64(n)
		st.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				st.fail("imap slow reader", err)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lostPosts counts acknowledged posts missing from the archive.
func lostPosts(ctx context.Context, s *server, accepted []string) (int, error) {
	out, err := s.cli(ctx, nil, "archive", "ls", loadList, "--json")
	if err != nil {
		return 0, err
	}
	have := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var m struct {
			MessageID string `json:"message_id"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return 0, err
		}
		have[m.MessageID] = true
	}
	lost := 0
	for _, id := range accepted {
		if !have[id] {
			lost++
		}
	}
	return lost, nil
}
