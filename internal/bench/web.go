package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// webArchive: the generated archive of the IMAP figures (IMAPCount posts)
// imported into a public list, read as a newsgroup (nntpFigures) after
// the web figures; first read over HTTP on loopback by 32
// clients at once, for 10 s a page: the list's page, its biggest recent
// thread, a post, the list's Atom feed, a search for the peers' word.
// For each, the time of one uncached request, then requests per second
// and the 99th percentile latency (mostly served from the page cache,
// as readers polling an unchanged list are); and the parley serve
// process's peak RSS.
func (b *runner) webArchive(ctx context.Context) error {
	path, _, err := b.imapMbox()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(b.o.WorkDir, "web")); err != nil {
		return err
	}
	s, err := b.startServer(ctx, "web")
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := s.cli(ctx, nil, "list", "create", imapList, "--archive", "public"); err != nil {
		return err
	}
	if _, err := s.cli(ctx, nil, "archive", "import", imapList, path); err != nil {
		return err
	}
	base := "http://" + s.ready["http"] + "/" + imapList + "/"
	pages, err := webPages(ctx, base)
	if err != nil {
		return err
	}
	rss := sampleRSS(s.cmd.Process.Pid)
	defer rss.stop()
	for _, p := range pages {
		// Once uncached (a query the page ignores makes a new cache key):
		// what the first reader after a new post waits.
		sep := "?"
		if strings.Contains(p.url, "?") {
			sep = "&"
		}
		start := time.Now()
		if _, err := get(ctx, p.url+sep+"cold=1"); err != nil {
			return err
		}
		b.report("web_"+p.name+"_cold_ms", time.Since(start).Seconds()*1000, "ms")
		if err := b.hammerPage(ctx, "web_", p); err != nil {
			return err
		}
	}
	b.report("web_peak_rss_MB", rss.stop(), "MB")
	// The same archive as a newsgroup.
	nrss := sampleRSS(s.cmd.Process.Pid)
	defer nrss.stop()
	if err := b.nntpFigures(ctx, s.ready["nntp"], "", b.o.IMAPCount); err != nil {
		return fmt.Errorf("nntp: %w", err)
	}
	b.report("nntp_peak_rss_MB", nrss.stop(), "MB")
	return nil
}

type webPage struct{ name, url string }

// hammerPage asks for a page from 32 clients for 10 s and reports the
// requests per second and the 99th percentile, named prefix+page.
func (b *runner) hammerPage(ctx context.Context, prefix string, p webPage) error {
	rate, p99, err := hammer(ctx, p.url, 32, 10*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	b.report(prefix+p.name+"_rps", rate, "req/s")
	b.report(prefix+p.name+"_p99_ms", p99.Seconds()*1000, "ms")
	return nil
}

var (
	threadRow = regexp.MustCompile(`<a href="(/[^"]+/t/\d+/)">[^<]*</a></td><td>[^<]*</td><td>(\d+)</td>`)
	postLink  = regexp.MustCompile(`<h2><a href="(/[^"]+/m/[^"]+/)">`)
)

// webPages finds the URLs to time: the thread with the most replies on
// the list's first page, and its first post.
func webPages(ctx context.Context, base string) ([]webPage, error) {
	list, err := get(ctx, base)
	if err != nil {
		return nil, err
	}
	best, most := "", -1
	for _, m := range threadRow.FindAllStringSubmatch(list, -1) {
		if n, _ := strconv.Atoi(m[2]); n > most {
			best, most = m[1], n
		}
	}
	if best == "" {
		return nil, fmt.Errorf("no thread on %s", base)
	}
	root := base[:len(base)-len("/"+imapList+"/")]
	thread, err := get(ctx, root+best)
	if err != nil {
		return nil, err
	}
	post := postLink.FindStringSubmatch(thread)
	if post == nil {
		return nil, fmt.Errorf("no post on %s", best)
	}
	return []webPage{{"list", base}, {"thread" + strconv.Itoa(most+1), root + best}, {"post", root + post[1]},
		{"feed", base + "atom.xml"}, {"search", base + "search?q=" + imapWord}}, nil
}

func get(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), err
}

// hammer GETs u from n clients for d and returns the requests per second
// and the 99th percentile latency. Any answer but 200 is an error.
func hammer(ctx context.Context, u string, n int, d time.Duration) (float64, time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s", resp.Status)
					}
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, time.Since(start))
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	slices.Sort(lat)
	return float64(len(lat)) / d.Seconds(), lat[len(lat)*99/100], nil
}
