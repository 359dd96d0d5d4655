package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley-list/parley/internal/mbox"
	"github.com/parley-list/parley/internal/nntpd"
)

// nntpPeers: INN 2.7 (Debian's inn2) and public-inbox-nntpd serving the
// generated archive of parley's NNTP figures (the web step's), read by
// the same client (nntpFigures), figures named peer_inn_… and
// peer_public_inbox_…. Run by name (-only web,nntp-peers for all three
// in one run). INN is a private instance under the work directory
// (its own inn.conf through INNCONF, its own port, run as the news
// user), fed the archive through rnews; public-inbox-nntpd runs two
// workers, one per core, as for the web figures.
func (b *runner) nntpPeers(ctx context.Context) error {
	if err := b.innPeer(ctx); err != nil {
		return fmt.Errorf("inn: %w", err)
	}
	addr, cmd, err := b.publicInboxDaemon(ctx, "public-inbox-nntpd")
	if err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	return b.peerNNTP(ctx, addr, "peer_public_inbox_", cmd.Process.Pid)
}

// peerNNTP waits for a peer's NNTP server to answer, then takes its
// figures and its peak memory (the process and its workers).
func (b *runner) peerNNTP(ctx context.Context, addr, prefix string, pid int) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer: %v", addr, err)
		}
	}
	rss := sampleTreeRSS(pid)
	defer rss.stop()
	if err := b.nntpFigures(ctx, addr, prefix, b.o.IMAPCount); err != nil {
		return err
	}
	b.report(prefix+"nntp_peak_rss_MB", rss.stop(), "MB")
	return nil
}

// innPeer sets up a private INN, feeds it the archive and reads it.
func (b *runner) innPeer(ctx context.Context) error {
	bin := "/usr/lib/news/bin" // Debian's pathbin
	if _, err := os.Stat(filepath.Join(bin, "innd")); err != nil {
		return errors.New("INN is not installed (apt-get install inn2)")
	}
	news, err := newsUser()
	if err != nil {
		return err
	}
	root := filepath.Join(b.o.WorkDir, "inn")
	port, err := freePort()
	if err != nil {
		return err
	}
	conf, err := innSetup(root, bin, port)
	if err != nil {
		return err
	}
	if err := chownTree(root, news); err != nil {
		return err
	}
	asNews := func(name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Env = append(os.Environ(), "INNCONF="+conf)
		cmd.Dir = filepath.Join(root, "db")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: news, Setpgid: true}
		return cmd
	}
	if out, err := asNews("makedbz", "-i", "-o", "-s", strconv.Itoa(b.o.IMAPCount)).CombinedOutput(); err != nil {
		return fmt.Errorf("makedbz: %v\n%s", err, out)
	}
	innd := asNews("innd", "-f")
	innd.Stdout, innd.Stderr = os.Stderr, os.Stderr
	if err := innd.Start(); err != nil {
		return err
	}
	defer func() { innd.Process.Signal(syscall.SIGTERM); innd.Wait() }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	start := time.Now()
	if err := b.innFeed(ctx, asNews, addr); err != nil {
		return err
	}
	b.report("peer_inn_import_s", time.Since(start).Seconds(), "s")
	return b.peerNNTP(ctx, addr, "peer_inn_", innd.Process.Pid)
}

// innFeed sends the generated archive to innd through rnews, as a news
// batch, and waits until the group holds all of it.
func (b *runner) innFeed(ctx context.Context, asNews func(string, ...string) *exec.Cmd, addr string) error {
	path, _, err := b.imapMbox()
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := innHigh(addr); err == nil {
			break
		} else if b.logf("inn: %v", err); time.Now().After(deadline) {
			return fmt.Errorf("innd did not answer: %v", err)
		}
	}
	rnews := asNews("rnews", "-N")
	in, err := rnews.StdinPipe()
	if err != nil {
		return err
	}
	out := &strings.Builder{}
	rnews.Stdout, rnews.Stderr = out, out
	if err := rnews.Start(); err != nil {
		return err
	}
	werr := writeBatch(in, f, nntpd.GroupName(imapList))
	in.Close()
	if err := rnews.Wait(); err != nil || werr != nil {
		return fmt.Errorf("rnews: %v %v\n%s", err, werr, out)
	}
	// innd files what rnews handed it a little later; it has refused
	// the rest (INN logs why to syslog) when the count stops growing.
	var last int64 = -1
	for stalled := 0; stalled < 10; time.Sleep(time.Second) {
		high, err := innHigh(addr)
		if err == nil && high >= int64(b.o.IMAPCount) {
			return nil
		}
		if high == last {
			stalled++
		} else {
			stalled, last = 0, high
		}
	}
	return fmt.Errorf("INN took %d articles of %d", last, b.o.IMAPCount)
}

// writeBatch writes an mbox as an rnews batch: each message with the
// Path and Newsgroups a news article needs, after "#! rnews <bytes>".
func writeBatch(w io.Writer, mboxFile io.Reader, group string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	r := mbox.NewReader(mboxFile, mbox.MboxRD, 0)
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
		head := "Path: bench!not-for-mail\nNewsgroups: " + group + "\n"
		fmt.Fprintf(bw, "#! rnews %d\n%s", len(head)+len(m.Data), head)
		if _, err := bw.Write(m.Data); err != nil {
			return err
		}
	}
}

// innHigh is the group's high water mark as INN's reader answers it.
func innHigh(addr string) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	// INN hands the connection to its reader after MODE READER, and what
	// was sent behind it is lost: one command at a time.
	for _, cmd := range []string{"MODE READER", "GROUP " + nntpd.GroupName(imapList)} {
		if _, err := r.ReadString('\n'); err != nil { // the greeting, then MODE READER's answer
			return 0, err
		}
		fmt.Fprintf(c, "%s\r\n", cmd)
	}
	l, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if f := strings.Fields(l); len(f) == 5 && f[0] == "211" {
		return strconv.ParseInt(f[3], 10, 64)
	}
	return 0, fmt.Errorf("GROUP: %q", l)
}

// innSetup writes a private INN's configuration and database under
// root, listening on port, and returns its inn.conf. Everything but the
// paths, the port and two limits is Debian's configuration.
func innSetup(root, bin string, port int) (string, error) {
	if err := os.RemoveAll(root); err != nil {
		return "", err
	}
	for _, d := range []string{"etc", "db", "log", "run", "http", "filter", "spool/articles",
		"spool/overview", "spool/incoming/tmp", "spool/incoming/bad", "spool/outgoing", "spool/archive"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	base, err := os.ReadFile("/etc/news/inn.conf")
	if err != nil {
		return "", err
	}
	// Paths, the port and the limits are set below; the rest is Debian's.
	drop := regexp.MustCompile(`(?m)^(path[a-z]*|port|bindaddress|artcutoff|doinnwatch|nnrpdpostport|domain|pathhost):.*$`)
	conf := drop.ReplaceAllString(string(base), "")
	conf += fmt.Sprintf("port: %d\nnnrpdpostport: %d\nbindaddress: 127.0.0.1\n", port, port)
	conf += "artcutoff: 0\ndoinnwatch: false\ndomain: localdomain\npathhost: inn.bench\n"
	conf += "pathnews: /usr/lib/news\npathbin: " + bin + "\npathcontrol: " + bin + "/control\n"
	for key, dir := range map[string]string{"pathfilter": "filter", "pathetc": "etc", "pathdb": "db", "pathrun": "run",
		"pathlog": "log", "pathhttp": "http", "pathspool": "spool", "patharticles": "spool/articles",
		"pathoverview": "spool/overview", "pathincoming": "spool/incoming", "pathtmp": "spool/incoming/tmp",
		"pathoutgoing": "spool/outgoing", "patharchive": "spool/archive"} {
		conf += key + ": " + filepath.Join(root, dir) + "\n"
	}
	files := map[string]string{
		"etc/inn.conf":  conf,
		"etc/newsfeeds": "ME:*::\n",
		"db/active": "control 0000000000 0000000001 n\ncontrol.cancel 0000000000 0000000001 n\n" +
			"junk 0000000000 0000000001 n\n" + nntpd.GroupName(imapList) + " 0000000000 0000000001 y\n",
		"db/active.times": "", "db/newsgroups": "", "db/history": "",
	}
	for _, name := range []string{"readers.conf", "incoming.conf", "storage.conf", "expire.ctl"} {
		data, err := os.ReadFile(filepath.Join("/etc/news", name))
		if err != nil {
			return "", err
		}
		files["etc/"+name] = string(data)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(root, "etc", "inn.conf"), nil
}

// newsUser is the news user INN runs as; setting it needs root.
func newsUser() (*syscall.Credential, error) {
	u, err := user.Lookup("news")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if os.Getuid() != 0 && os.Getuid() != uid {
		return nil, errors.New("INN runs as the news user: run the bench as root")
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// chownTree gives the tree under root to the user INN runs as.
func chownTree(root string, to *syscall.Credential) error {
	return filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(to.Uid), int(to.Gid))
	})
}
