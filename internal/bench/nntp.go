package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/nntpd"
)

// nntpFigures reads the generated archive as a newsgroup: GROUP's
// latency (median of 50), OVER of every article (seconds), ARTICLE of
// every article (MB/s, 100 commands in flight at a time). The figures'
// names start with prefix: "" for parley's, "peer_…_" for a peer's,
// which the same client reads in the same way.
func (b *runner) nntpFigures(ctx context.Context, addr, prefix string, count int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Minute))
	r, w := bufio.NewReaderSize(c, 1<<20), bufio.NewWriter(c)
	line := func() (string, error) {
		l, err := r.ReadString('\n')
		return strings.TrimRight(l, "\r\n"), err
	}
	block := func() (int64, error) { // reads a multi-line answer, returns its bytes
		var n int64
		for {
			l, err := r.ReadSlice('\n')
			if err != nil {
				return n, err
			}
			if len(l) == 3 && l[0] == '.' {
				return n, nil
			}
			n += int64(len(l))
		}
	}
	if _, err := line(); err != nil {
		return err
	}
	// INN answers a feed's peer in transit mode until this.
	fmt.Fprintf(w, "MODE READER\r\n")
	w.Flush()
	if s, err := line(); err != nil || !strings.HasPrefix(s, "20") {
		return fmt.Errorf("MODE READER: %q %v", s, err)
	}
	group := nntpd.GroupName(imapList)
	var lat []float64
	for range 50 {
		start := time.Now()
		fmt.Fprintf(w, "GROUP %s\r\n", group)
		w.Flush()
		if s, err := line(); err != nil || !strings.HasPrefix(s, "211") {
			return fmt.Errorf("GROUP: %q %v", s, err)
		}
		lat = append(lat, time.Since(start).Seconds()*1000)
	}
	b.report(prefix+"nntp_group_ms", median(lat), "ms")
	start := time.Now()
	fmt.Fprintf(w, "OVER 1-%d\r\n", count)
	w.Flush()
	if s, err := line(); err != nil || !strings.HasPrefix(s, "224") {
		return fmt.Errorf("OVER: %q %v", s, err)
	}
	if _, err := block(); err != nil {
		return err
	}
	b.report(prefix+"nntp_over_all_s", time.Since(start).Seconds(), "s")
	start = time.Now()
	var total int64
	for first := 1; first <= count; first += 100 {
		last := min(first+99, count)
		for n := first; n <= last; n++ {
			fmt.Fprintf(w, "ARTICLE %d\r\n", n)
		}
		w.Flush()
		for n := first; n <= last; n++ {
			s, err := line()
			if err != nil || !strings.HasPrefix(s, "220") {
				return fmt.Errorf("ARTICLE %d: %q %v", n, s, err)
			}
			m, err := block()
			if err != nil {
				return err
			}
			total += m
		}
	}
	b.report(prefix+"nntp_article_MBps", float64(total)/1e6/time.Since(start).Seconds(), "MB/s")
	return nil
}
