package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The IMAP archive figures (docs/performance.md) are taken the way the
// peers' figures were taken from Dovecot and public-inbox: per pass one
// fresh connection does LOGIN, EXAMINE (read-only SELECT),
// UID FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE), UID FETCH 1:* BODY.PEEK[]
// and UID SEARCH BODY <word in about 1% of bodies>. One untimed warm-up
// pass, then the median of imapRuns passes.
const (
	imapList = "bench@lists.example.org"
	imapWord = "quetzalcoatl" // the peers' word; not in the generator's vocabulary
	imapRuns = 3
	// imapGenVersion marks a cached archive as generateMbox's current
	// output; bump it when the generator changes what it writes.
	imapGenVersion = 2
	imapMetaFormat = "count=%d\ngenerator=%d\nword=%s\nbytes=%d\nword_body_msgs=%d\n"
)

// imapArchive: a generated archive of IMAPCount posts imported into a
// public list, then read over IMAP on loopback (imapPasses) and pulled
// by mbsync, while the parley serve process's RSS is sampled.
func (b *runner) imapArchive(ctx context.Context) error {
	path, gen, err := b.imapMbox()
	if err != nil {
		return err
	}
	// A fresh data directory even when -work is reused: the import is timed.
	if err := os.RemoveAll(filepath.Join(b.o.WorkDir, "imap")); err != nil {
		return err
	}
	s, err := b.startServer(ctx, "imap")
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := s.cli(ctx, nil, "list", "create", imapList, "--archive", "public"); err != nil {
		return err
	}
	start := time.Now()
	out, err := s.cli(ctx, nil, "archive", "import", imapList, path)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	b.logf("imap: imported %d messages, %.1f MB, in %s: %s", b.o.IMAPCount, float64(gen.size)/1e6,
		elapsed.Round(time.Millisecond), strings.Join(strings.Fields(out), " "))
	b.report("imap_import_s", elapsed.Seconds(), "s")

	rss := sampleRSS(s.cmd.Process.Pid)
	defer rss.stop()
	if err := b.imapPasses(ctx, s.ready["imap"], s.cmd.Process.Pid, gen); err != nil {
		return err
	}
	clientPeak := rss.peak()
	if err := b.mbsyncFull(ctx, s.ready["imap"]); err != nil {
		return err
	}
	peak := rss.stop()
	b.logf("imap: parley serve (pid %d, PostgreSQL not counted) peak RSS %.0f MB during the IMAP passes, %.0f MB up to the end (mbsync included if it ran)",
		s.cmd.Process.Pid, clientPeak, peak)
	b.report("imap_peak_rss_MB", peak, "MB")
	return nil
}

// imapMbox generates the archive into the work directory, or reuses the
// one an earlier run with the same -work left there. The meta file, like
// gen_archive.py's meta.txt, is written once the mbox is complete.
func (b *runner) imapMbox() (string, genResult, error) {
	n := b.o.IMAPCount
	path := filepath.Join(b.o.WorkDir, fmt.Sprintf("imap-%d.mbox", n))
	meta := path + ".meta"
	if data, err := os.ReadFile(meta); err == nil {
		var count, version int
		var word string
		var res genResult
		_, err := fmt.Sscanf(string(data), imapMetaFormat, &count, &version, &word, &res.size, &res.wordMsgs)
		fi, serr := os.Stat(path)
		if err == nil && serr == nil && count == n && version == imapGenVersion && word == imapWord && fi.Size() == res.size {
			b.logf("imap: reusing %s (%d posts with %q in the body)", path, res.wordMsgs, imapWord)
			return path, res, nil
		}
	}
	if err := os.Remove(meta); err != nil && !os.IsNotExist(err) {
		return "", genResult{}, err
	}
	start := time.Now()
	res, err := generateMbox(path, n, 1, genOptions{list: imapList, word: imapWord})
	if err != nil {
		return "", res, err
	}
	b.logf("imap: generated %s: %d messages, %.1f MB, %q in the body of %d, in %s", path, n,
		float64(res.size)/1e6, imapWord, res.wordMsgs, time.Since(start).Round(time.Millisecond))
	return path, res, os.WriteFile(meta, fmt.Appendf(nil, imapMetaFormat, n, imapGenVersion, imapWord, res.size, res.wordMsgs), 0o644)
}

// imapPass holds the times of one pass, and the CPU the server (parley
// and its PostgreSQL) took for the envelopes and for the bodies: client
// and server share the machine, so wall time alone hides whose it is.
type imapPass struct {
	sel, envelope, body, search time.Duration
	bodyBytes                   int64
	envelopeCPU, bodyCPU        cpuTimes
}

func (p imapPass) bodyMBps() float64 { return float64(p.bodyBytes) / 1e6 / p.body.Seconds() }

// imapPasses runs the warm-up and the timed passes and reports medians.
func (b *runner) imapPasses(ctx context.Context, addr string, pid int, gen genResult) error {
	var runs []imapPass
	for i := range 1 + imapRuns {
		p, err := imapOnePass(ctx, addr, pid, b.o.IMAPCount, gen.wordMsgs)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("run %d", i)
		if i == 0 {
			label = "warm-up"
		} else {
			runs = append(runs, p)
		}
		b.logf("imap: %s: EXAMINE %s, envelopes %s (CPU: parley %.2f s, PostgreSQL %.2f s), bodies %s (%.1f MB, %.1f MB/s; CPU: parley %.2f s, PostgreSQL %.2f s), SEARCH BODY %s (%d hits)",
			label, p.sel.Round(time.Microsecond), p.envelope.Round(time.Millisecond), p.envelopeCPU.server, p.envelopeCPU.children,
			p.body.Round(time.Millisecond), float64(p.bodyBytes)/1e6, p.bodyMBps(), p.bodyCPU.server, p.bodyCPU.children,
			p.search.Round(time.Microsecond), gen.wordMsgs)
	}
	med := func(f func(imapPass) float64) float64 {
		var vals []float64
		for _, p := range runs {
			vals = append(vals, f(p))
		}
		return median(vals)
	}
	b.report("imap_select_ms", med(func(p imapPass) float64 { return p.sel.Seconds() * 1000 }), "ms")
	b.report("imap_envelope_fetch_s", med(func(p imapPass) float64 { return p.envelope.Seconds() }), "s")
	b.report("imap_envelope_fetch_cpu_parley_s", med(func(p imapPass) float64 { return p.envelopeCPU.server }), "s")
	b.report("imap_envelope_fetch_cpu_postgres_s", med(func(p imapPass) float64 { return p.envelopeCPU.children }), "s")
	b.report("imap_body_fetch_MBps", med(imapPass.bodyMBps), "MB/s")
	b.report("imap_body_fetch_cpu_parley_s", med(func(p imapPass) float64 { return p.bodyCPU.server }), "s")
	b.report("imap_body_fetch_cpu_postgres_s", med(func(p imapPass) float64 { return p.bodyCPU.children }), "s")
	b.report("imap_search_body_ms", med(func(p imapPass) float64 { return p.search.Seconds() * 1000 }), "ms")
	return nil
}

// imapOnePass is one pass on a fresh connection. It fails if the mailbox,
// either FETCH or the SEARCH does not account for every message.
func imapOnePass(ctx context.Context, addr string, pid, n, wordMsgs int) (imapPass, error) {
	var p imapPass
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return p, err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	if err := c.Login("anonymous", "x").Wait(); err != nil {
		return p, fmt.Errorf("LOGIN: %w", err)
	}
	t := time.Now()
	sel, err := c.Select(imapList, &imap.SelectOptions{ReadOnly: true}).Wait()
	p.sel = time.Since(t)
	if err != nil {
		return p, fmt.Errorf("EXAMINE: %w", err)
	}
	if int(sel.NumMessages) != n {
		return p, fmt.Errorf("EXAMINE %s: %d messages, %d were imported", imapList, sel.NumMessages, n)
	}
	all := imap.UIDSet{{Start: 1, Stop: 0}} // 1:*
	t, cpu := time.Now(), cpuNow(pid)
	msgs, _, err := drain(c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true}))
	p.envelope, p.envelopeCPU = time.Since(t), cpuNow(pid).since(cpu)
	if err == nil && msgs != n {
		err = fmt.Errorf("%d messages of %d", msgs, n)
	}
	if err != nil {
		return p, fmt.Errorf("UID FETCH ENVELOPE: %w", err)
	}
	t, cpu = time.Now(), cpuNow(pid)
	msgs, p.bodyBytes, err = drain(c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}))
	p.body, p.bodyCPU = time.Since(t), cpuNow(pid).since(cpu)
	if err == nil && msgs != n {
		err = fmt.Errorf("%d messages of %d", msgs, n)
	}
	if err != nil {
		return p, fmt.Errorf("UID FETCH BODY.PEEK[]: %w", err)
	}
	t = time.Now()
	found, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{imapWord}}, nil).Wait()
	p.search = time.Since(t)
	if err != nil {
		return p, fmt.Errorf("UID SEARCH BODY: %w", err)
	}
	if hits := len(found.AllUIDs()); hits != wordMsgs {
		return p, fmt.Errorf("UID SEARCH BODY %s: %d hits, but the generator put the word in %d posts", imapWord, hits, wordMsgs)
	}
	return p, c.Logout().Wait()
}

// drain reads a FETCH's responses as they stream in (nothing is kept),
// counting the messages and the bytes of body sections.
func drain(cmd *imapclient.FetchCommand) (msgs int, size int64, err error) {
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		msgs++
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok && body.Literal != nil {
				n, err := io.Copy(io.Discard, body.Literal)
				size += n
				if err != nil {
					cmd.Close()
					return msgs, size, err
				}
			}
		}
	}
	return msgs, size, cmd.Close()
}

// mbsyncrc is the peers' configuration (imap_archive.sh): the list's
// mailbox pulled into an empty Maildir, state kept inside it.
const mbsyncrc = `IMAPAccount bench
Host %s
Port %s
User anonymous
Pass x
SSLType None
AuthMechs LOGIN
PipelineDepth 50

IMAPStore remote
Account bench

MaildirStore local
Path %[3]s/
Inbox %[3]s/INBOX
SubFolders Verbatim

Channel bench
Far :remote:"%[4]s"
Near :local:archive
Sync Pull
Create Near
SyncState *
`

// mbsyncFull: seconds for mbsync to pull the whole list into an empty
// Maildir, median of imapRuns; skipped when mbsync is not installed.
func (b *runner) mbsyncFull(ctx context.Context, addr string) error {
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		b.logf("imap: mbsync is not installed (apt-get install isync): no imap_mbsync_full_s")
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.o.WorkDir, "mbsync")
	defer os.RemoveAll(dir)
	var runs []float64
	for r := range imapRuns {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "mail"), 0o700); err != nil {
			return err
		}
		rc := filepath.Join(dir, "mbsyncrc")
		if err := os.WriteFile(rc, fmt.Appendf(nil, mbsyncrc, host, port, filepath.Join(dir, "mail"), imapList), 0o600); err != nil {
			return err
		}
		runCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		start := time.Now()
		out, err := exec.CommandContext(runCtx, mbsync, "-q", "-c", rc, "bench").CombinedOutput()
		elapsed := time.Since(start)
		cancel()
		if err != nil {
			return fmt.Errorf("mbsync: %v\n%s", err, out)
		}
		n, err := countMaildir(filepath.Join(dir, "mail", "archive"))
		if err != nil {
			return err
		}
		if n != b.o.IMAPCount {
			return fmt.Errorf("mbsync stored %d messages of %d\n%s", n, b.o.IMAPCount, out)
		}
		b.logf("imap: mbsync run %d: %s, %d messages", r+1, elapsed.Round(time.Millisecond), n)
		runs = append(runs, elapsed.Seconds())
	}
	b.report("imap_mbsync_full_s", median(runs), "s")
	return nil
}

// countMaildir counts the messages in a Maildir's cur and new.
func countMaildir(dir string) (int, error) {
	n := 0
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return 0, err
		}
		n += len(entries)
	}
	return n, nil
}

func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vals))
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// rssSampler reads one process's VmRSS every 100 ms and keeps the peak.
type rssSampler struct {
	pid  int
	tree bool // count the descendants too
	mu   sync.Mutex
	max  int64 // kB
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// sampleRSS samples one process's resident memory every 100 ms (parley
// serves from one process; its PostgreSQL is measured apart).
func sampleRSS(pid int) *rssSampler { return startSampler(&rssSampler{pid: pid}) }

// sampleTreeRSS samples a process's and its descendants' memory added
// up: the peers serve readers from worker processes (INN's nnrpd,
// public-inbox's workers).
func sampleTreeRSS(pid int) *rssSampler { return startSampler(&rssSampler{pid: pid, tree: true}) }

func startSampler(r *rssSampler) *rssSampler {
	r.done = make(chan struct{})
	r.wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			r.sample()
			select {
			case <-r.done:
				return
			case <-tick.C:
			}
		}
	})
	return r
}

// sample reads the resident memory of the process, or of it and its
// descendants added up.
func (r *rssSampler) sample() {
	pids := []int{r.pid}
	if r.tree {
		pids = processTree(r.pid)
	}
	var kb int64
	for _, pid := range pids {
		kb += vmRSS(pid)
	}
	r.mu.Lock()
	r.max = max(r.max, kb)
	r.mu.Unlock()
}

// processTree is pid and its descendants, as /proc shows them now.
func processTree(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		if f := strings.Fields(string(rest)); len(f) > 1 {
			if ppid, err := strconv.Atoi(f[1]); err == nil {
				children[ppid] = append(children[ppid], child)
			}
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ { // breadth first, no recursion
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// vmRSS is a process's resident memory in kB (0 when it is gone).
func vmRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0 // the process is gone; its error surfaces elsewhere
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// peak is the highest RSS seen so far in MB, counted as the peers'
// figures were (kB / 1000).
func (r *rssSampler) peak() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return float64(r.max) / 1000
}

// stop ends sampling (after one last sample) and returns the peak.
func (r *rssSampler) stop() float64 {
	r.once.Do(func() {
		close(r.done)
		r.wg.Wait()
		r.sample()
	})
	return r.peak()
}
