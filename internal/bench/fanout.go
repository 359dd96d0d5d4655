package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is a loopback SMTP server that accepts everything and remembers
// when it accepted the n-th recipient of the list it was told to expect.
// Copies of other lists are taken and not counted: two servers share the
// sink, and one may still be sending an earlier figure's copies.
type sink struct {
	addr string
	srv  *smtp.Server

	mu     sync.Mutex
	from   string // count only copies whose return path starts with this
	rcpts  int
	last   time.Time
	target int
	done   chan struct{}
}

func startSink() (*sink, error) {
	s := &sink{done: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.srv.Domain = "sink.bench"
	s.srv.MaxLineLength = 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	go s.srv.Serve(ln)
	return s, nil
}

// expect resets the count and arms done for n recipients of list's
// copies: those whose return path is the list's bounce address or a VERP
// form of it (both begin "LOCAL-bounces").
func (s *sink) expect(n int, list string) {
	local, _, _ := strings.Cut(list, "@")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcpts, s.target, s.done, s.from = 0, n, make(chan struct{}), local+"-bounces"
}

func (s *sink) wait(timeout time.Duration) (time.Time, int, error) {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rcpts < s.target {
		return s.last, s.rcpts, fmt.Errorf("sink got %d of %d copies in %s", s.rcpts, s.target, timeout)
	}
	return s.last, s.rcpts, nil
}

// count is the recipients accepted since expect.
func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpts
}

type sinkSession struct {
	s    *sink
	from string
	to   int
}

func (x *sinkSession) Reset()                                      { x.to = 0 }
func (x *sinkSession) Logout() error                               { return nil }
func (x *sinkSession) Mail(from string, _ *smtp.MailOptions) error { x.from = from; return nil }
func (x *sinkSession) Rcpt(string, *smtp.RcptOptions) error        { x.to++; return nil }
func (x *sinkSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if !strings.HasPrefix(x.from, x.s.from) {
		return nil
	}
	x.s.rcpts += x.to
	x.s.last = time.Now()
	if x.s.rcpts >= x.s.target && x.s.target > 0 {
		select {
		case <-x.s.done:
		default:
			close(x.s.done)
		}
	}
	return nil
}

// fanoutSpec is one fan-out figure: 10,000 members of a list on domain,
// on domains destination domains, signed with a key of type dkim ("":
// unsigned), one transaction per member unless noVERP.
type fanoutSpec struct {
	name    string
	domain  string
	domains int
	dkim    string
	noVERP  bool
}

// fanout: seconds from the 250 of one post to the sink's last accepted
// copy, 10,000 members on one domain and on 100 domains, batched, and
// signed. A second server, with http.base_url set, gives every copy its
// own one-click unsubscribe link (RFC 8058, signed): the realistic large
// list, each copy rendered and signed on its own, with an RSA-2048 and
// with an Ed25519 key.
func (b *runner) fanout(ctx context.Context) error {
	sk, err := startSink()
	if err != nil {
		return err
	}
	defer sk.srv.Close()
	s, err := b.startServer(ctx, "fanout", "PARLEY_RELAY=smtp://"+sk.addr)
	if err != nil {
		return err
	}
	defer s.stop()
	for _, spec := range []fanoutSpec{{"fanout_10k_1domain", "lists.example.org", 1, "", false},
		{"fanout_10k_100domains", "lists.example.org", 100, "", false},
		{"fanout_10k_noverp", "lists.example.org", 1, "", true},
		{"fanout_10k_dkim", "lists.example.org", 1, "rsa", false}} { // and the throughput after it is signed too
		if err := b.fanoutOne(ctx, s, sk, spec); err != nil {
			return err
		}
	}
	if err := b.throughput(ctx, s, sk); err != nil {
		return err
	}
	// Its PostgreSQL would still be vacuuming the throughput's copies
	// while the next figures run.
	if err := s.stop(); err != nil {
		return err
	}
	u, err := b.startServer(ctx, "fanout-unsub", "PARLEY_RELAY=smtp://"+sk.addr, "PARLEY_HTTP_BASE_URL=https://lists.example.org/")
	if err != nil {
		return err
	}
	defer u.stop()
	for _, spec := range []fanoutSpec{{"fanout_10k_unsub_rsa", "rsa.example.org", 1, "rsa", false},
		{"fanout_10k_unsub_ed25519", "ed.example.org", 1, "ed25519", false}} {
		if err := b.fanoutOne(ctx, u, sk, spec); err != nil {
			return err
		}
	}
	return nil
}

// fanoutOne makes the spec's list and members, posts once, and reports
// when the sink took the last copy, and the CPU it took.
func (b *runner) fanoutOne(ctx context.Context, s *server, sk *sink, spec fanoutSpec) error {
	if spec.dkim != "" {
		if _, err := s.cli(ctx, nil, "dkim", "keygen", spec.domain, "--type", spec.dkim); err != nil {
			return err
		}
	}
	list := strings.ReplaceAll(spec.name, "_", "-") + "@" + spec.domain
	verp := "on"
	if spec.noVERP {
		verp = "off"
	}
	if _, err := s.cli(ctx, nil, "list", "create", list, "--post-policy", "open", "--verp", verp); err != nil {
		return err
	}
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, "m%d@d%d.example\n", i, i%spec.domains)
	}
	if _, err := s.cli(ctx, strings.NewReader(sb.String()), "member", "add", "--quiet", list, "--file", "-"); err != nil {
		return err
	}
	sk.expect(10000, list)
	snd, err := dialSender(s.ready["smtp"])
	if err != nil {
		return err
	}
	msg := post(list, 1, 1)
	before := cpuNow(s.cmd.Process.Pid)
	if err := snd.send("poster@example.org", list, msg); err != nil {
		return err
	}
	acked := time.Now()
	snd.close()
	last, n, err := sk.wait(5 * time.Minute)
	if err != nil {
		return err
	}
	cpu := cpuNow(s.cmd.Process.Pid).since(before)
	b.logf("%s: %d copies, last %s after the 250; CPU seconds: parley %.2f, its PostgreSQL %.2f, the sink %.2f",
		spec.name, n, last.Sub(acked).Round(time.Millisecond), cpu.server, cpu.children, cpu.bench)
	b.report(spec.name, last.Sub(acked).Seconds(), "s")
	b.report(spec.name+"_cpu_parley_s", cpu.server, "s")
	b.report(spec.name+"_cpu_postgres_s", cpu.children, "s")
	return nil
}

// throughput: copies/s the sink accepts while posts to a 1,000-member list
// keep coming, sustained over the configured duration.
func (b *runner) throughput(ctx context.Context, s *server, sk *sink) error {
	const list = "flow@lists.example.org"
	if err := s.listWithMembers(ctx, list, 1000); err != nil {
		return err
	}
	snd, err := dialSender(s.ready["smtp"])
	if err != nil {
		return err
	}
	defer snd.close()
	sk.expect(1<<30, list)
	start := time.Now()
	posts := 0
	for time.Since(start) < b.o.ThroughputDuration && ctx.Err() == nil {
		if err := snd.send("poster@example.org", list, post(list, 2, posts)); err != nil {
			return err
		}
		posts++
		time.Sleep(100 * time.Millisecond) // ten posts a second, 10,000 copies a second offered
	}
	elapsed := time.Since(start)
	copies := sk.count()
	b.logf("throughput: %d posts, %d copies accepted in %s", posts, copies, elapsed.Round(time.Millisecond))
	b.report("outbound_throughput", float64(copies)/elapsed.Seconds(), "copies/s")
	// The rest of the offered copies are sent before the next figure, so
	// that it has the machine to itself.
	for want := posts * 1000; sk.count() < want; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("throughput: %d of %d copies after %s", sk.count(), want, time.Since(start).Round(time.Second))
		}
	}
	b.logf("throughput: all %d copies sent %s after the first post", posts*1000, time.Since(start).Round(time.Millisecond))
	return nil
}

// cpuTimes are CPU seconds used so far: by the server process, by its
// descendants alive now (the embedded PostgreSQL), and by this process
// (the sink runs here).
type cpuTimes struct{ server, children, bench float64 }

func cpuNow(pid int) cpuTimes {
	var c cpuTimes
	for i, p := range processTree(pid) {
		if i == 0 {
			c.server = cpuSeconds(p)
		} else {
			c.children += cpuSeconds(p)
		}
	}
	c.bench = cpuSeconds(os.Getpid())
	return c
}

func (c cpuTimes) since(before cpuTimes) cpuTimes {
	return cpuTimes{c.server - before.server, c.children - before.children, c.bench - before.bench}
}

// cpuSeconds is a process's user and system time so far (0 when gone).
func cpuSeconds(pid int) float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after "(comm)": state is the first, utime the 12th, stime the 13th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}
