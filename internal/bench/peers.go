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
	"syscall"
	"time"

	"github.com/parley-list/parley/internal/nntpd"
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
	addr, cmd, err := b.publicInboxDaemon(ctx, "public-inbox-httpd")
	if err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	base := "http://" + addr + "/bench/"
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
		if err := b.hammerPage(ctx, "peer_public_inbox_", p); err != nil {
			return fmt.Errorf("public-inbox %w", err)
		}
	}
	b.report("peer_public_inbox_peak_rss_MB", rss.stop(), "MB")
	return nil
}

// publicInboxDaemon starts one of public-inbox's daemons on the
// generated archive's inbox, with two workers (one per core of the
// machine the figures were taken on, as parley's one process uses both),
// on a free loopback port.
func (b *runner) publicInboxDaemon(ctx context.Context, daemon string) (string, *exec.Cmd, error) {
	env, err := b.publicInbox(ctx)
	if err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.CommandContext(ctx, daemon, "-l", addr, "-W2")
	cmd.Env = env
	// Its own process group: public-inbox's daemons pass a stop signal on
	// to their group, which would otherwise stop this run too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return addr, cmd, cmd.Start()
}

// publicInbox builds, once per run, a public-inbox v2 inbox of the
// generated archive (served as the newsgroup parley serves it as) and
// returns the environment its daemons need.
func (b *runner) publicInbox(ctx context.Context) ([]string, error) {
	if b.piEnv != nil {
		return b.piEnv, nil
	}
	for _, tool := range []string{"public-inbox-init", "public-inbox-index", "public-inbox-httpd", "public-inbox-nntpd", "perl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed (apt-get install public-inbox)", tool)
		}
	}
	path, _, err := b.imapMbox()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.o.WorkDir, "public-inbox")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "PI_CONFIG="+filepath.Join(dir, "config"), "HOME="+dir)
	inbox := filepath.Join(dir, "bench")
	script := filepath.Join(dir, "import.pl")
	if err := os.WriteFile(script, piImport, 0o644); err != nil {
		return nil, err
	}
	start := time.Now()
	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"public-inbox-init", "-V2", "--ng", nntpd.GroupName(imapList), "bench", inbox, "http://127.0.0.1/bench", imapList}},
		{path, []string{"perl", script, inbox}},
		{"", []string{"public-inbox-index", "--no-fsync", inbox}},
	}
	for _, st := range steps {
		if err := runWith(ctx, env, st.stdin, st.args...); err != nil {
			return nil, err
		}
	}
	b.report("peer_public_inbox_import_s", time.Since(start).Seconds(), "s")
	b.piEnv = env
	return env, nil
}

// runWith runs a command with env, stdin from a file ("" for none).
func runWith(ctx context.Context, env []string, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
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
		return fmt.Errorf("%s: %v\n%s", args[0], err, out)
	}
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
