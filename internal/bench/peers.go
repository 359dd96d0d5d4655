package bench

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

//go:embed pi-import.pl
var piImport []byte

// webPeers: public-inbox-httpd on the same generated archive as the web
// figures, read by the same client: its inbox's page, the thread and the
// post of the generator's first thread, its Atom feed, a search for the
// same word. Run by name (-only web-peers); needs Debian's public-inbox.
// public-inbox-httpd runs two workers, one per core of the machine the
// figures were taken on, as parley's one process uses both.
func (b *runner) webPeers(ctx context.Context) error {
	for _, tool := range []string{"public-inbox-init", "public-inbox-index", "public-inbox-httpd", "perl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install public-inbox)", tool)
		}
	}
	path, _, err := b.imapMbox()
	if err != nil {
		return err
	}
	dir := filepath.Join(b.o.WorkDir, "public-inbox")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	env := append(os.Environ(), "PI_CONFIG="+filepath.Join(dir, "config"), "HOME="+dir)
	run := func(stdin string, name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				return err
			}
			defer f.Close()
			cmd.Stdin = f
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, out)
		}
		return nil
	}
	inbox := filepath.Join(dir, "bench")
	script := filepath.Join(dir, "import.pl")
	if err := os.WriteFile(script, piImport, 0o644); err != nil {
		return err
	}
	start := time.Now()
	if err := run("", "public-inbox-init", "-V2", "bench", inbox, "http://127.0.0.1/bench", imapList); err != nil {
		return err
	}
	if err := run(path, "perl", script, inbox); err != nil {
		return err
	}
	if err := run("", "public-inbox-index", "--no-fsync", inbox); err != nil {
		return err
	}
	b.report("peer_public_inbox_import_s", time.Since(start).Seconds(), "s")
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "public-inbox-httpd", "-l", "127.0.0.1:"+strconv.Itoa(port), "-W2")
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d/bench/", port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := get(ctx, base); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("public-inbox-httpd did not answer: %v", err)
		}
	}
	index, err := get(ctx, base)
	if err != nil {
		return err
	}
	// The newest thread's root on its index page.
	m := regexp.MustCompile(`href="([^"/]+@[^"/]+)/T/#u"`).FindStringSubmatch(index)
	if m == nil {
		return fmt.Errorf("no thread on public-inbox's index page")
	}
	rss := sampleRSS(cmd.Process.Pid)
	defer rss.stop()
	for _, p := range []webPage{{"list", base}, {"thread", base + m[1] + "/t/"}, {"post", base + m[1] + "/"},
		{"feed", base + "new.atom"}, {"search", base + "?q=" + imapWord}} {
		rate, p99, err := hammer(ctx, p.url, 32, 10*time.Second)
		if err != nil {
			return fmt.Errorf("public-inbox %s: %w", p.name, err)
		}
		b.report("peer_public_inbox_"+p.name+"_rps", rate, "req/s")
		b.report("peer_public_inbox_"+p.name+"_p99_ms", p99.Seconds()*1000, "ms")
	}
	b.report("peer_public_inbox_peak_rss_MB", rss.stop(), "MB")
	return nil
}

// freePort returns a loopback port nothing listens on just now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
