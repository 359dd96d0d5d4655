package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// digest: one issue of 1,000 posts for 10,000 members who take MIME
// digests. digest_cut_1000x10k is the wall time of `parley digest send`
// (cutting the issue and queueing it, the CLI's own start included);
// digest_first_copy the time from then until the sink accepts the first
// copy (expanding the job to 10,000 copies, rendering the 3 MB digest,
// sending it); digest_copy_rate the copies per second the sink accepts
// over the next 15 s. The posts are the 3 KB posts of the other figures;
// digest_posts_expanded_1000x10k is how long their own delivery jobs take
// to expand (to no copies) for 10,000 digest members, a figure of the
// fan-out's anti-join on digest spans (read from /metrics, so to 5 s).
func (b *runner) digest(ctx context.Context) error {
	sk, err := startSink()
	if err != nil {
		return err
	}
	defer sk.srv.Close()
	s, err := b.startServer(ctx, "digest", "PARLEY_RELAY=smtp://"+sk.addr, "PARLEY_DIGEST_CHECK_EVERY=1h")
	if err != nil {
		return err
	}
	defer s.stop()
	const list = "digest-bench@lists.example.org"
	if _, err := s.cli(ctx, nil, "list", "create", list, "--post-policy", "open", "--digest-size", "0", "--digest-schedule", "none"); err != nil {
		return err
	}
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, "m%d@d%d.example\n", i, i%100)
	}
	if _, err := s.cli(ctx, strings.NewReader(sb.String()), "member", "add", "--quiet", list, "--delivery", "digest", "--file", "-"); err != nil {
		return err
	}
	snd, err := dialSender(s.ready["smtp"])
	if err != nil {
		return err
	}
	for i := range 1000 {
		if err := snd.send("poster@example.org", list, post(list, 3, i)); err != nil {
			snd.close()
			return err
		}
	}
	snd.close()
	// The posts' own jobs (no copies: every member takes digests) are
	// expanded first; the digest's figures start from an idle queue.
	sent := time.Now()
	if err := waitQueueIdle(ctx, s.ready["http"], 10*time.Minute); err != nil {
		return err
	}
	b.report("digest_posts_expanded_1000x10k", time.Since(sent).Seconds(), "s")
	sk.expect(10000, list)
	start := time.Now()
	out, err := s.cli(ctx, nil, "digest", "send", list)
	if err != nil {
		return err
	}
	queued := time.Now()
	b.logf("digest: %s", strings.TrimSpace(out))
	b.report("digest_cut_1000x10k", queued.Sub(start).Seconds(), "s")
	for sk.count() == 0 && time.Since(queued) < 5*time.Minute {
		time.Sleep(5 * time.Millisecond)
	}
	first := time.Now()
	b.report("digest_first_copy", first.Sub(queued).Seconds(), "s")
	time.Sleep(15 * time.Second)
	n := sk.count()
	b.logf("digest: %d copies in %s after the first", n, time.Since(first).Round(time.Millisecond))
	b.report("digest_copy_rate", float64(n)/time.Since(first).Seconds(), "copies/s")
	return nil
}

// waitQueueIdle polls the server's /metrics until no post or notice waits
// to be expanded.
func waitQueueIdle(ctx context.Context, httpAddr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	time.Sleep(6 * time.Second) // the figure is cached for 5 s: none from before the posts
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "\nparley_queue_jobs_unexpanded 0\n") {
				return nil
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("the outbound queue was not idle within %s", within)
}
