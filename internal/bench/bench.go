// Package bench is parley's own benchmark (make bench): it starts the real
// parley binary on a fresh data directory (embedded PostgreSQL with its
// normal durability settings) on loopback, drives it like real clients
// do, and prints one line per figure, "BENCH <name> <value> <unit>", so
// runs can be compared by a script. docs/performance.md says what each
// figure measures and how the peers were measured beside it. Timing
// lives here and never in tests.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options configure a run.
type Options struct {
	Parley  string // path to the parley binary
	WorkDir string // scratch directory ("" makes one)
	Out     io.Writer
	Log     io.Writer
	Only    map[string]bool // run only these benchmarks (empty: all)

	IngestClients      int           // concurrent SMTP clients for the ingest rate
	IngestDuration     time.Duration // how long to send
	IngestLists        int           // spread the clients over this many lists (1: the figure docs/performance.md reports)
	LatencyPosts       int           // posts for the latency figure
	ImportCount        int           // messages in the generated mbox
	ThroughputDuration time.Duration // how long outbound_throughput offers load
	IMAPCount          int           // messages in the archive read over IMAP

	// The load test runs only when asked for by name (make load).
	LoadSMTP, LoadIMAP int           // concurrent sessions
	LoadDuration       time.Duration // how long they run
}

// Run runs the benchmarks.
func Run(ctx context.Context, o Options) error {
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "parley-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	// PostgreSQL may run as another user when this runs as root.
	if err := os.Chmod(o.WorkDir, 0o711); err != nil {
		return err
	}
	b := &runner{o: o}
	steps := []struct {
		name   string
		fn     func(context.Context) error
		byName bool // not part of "all"
	}{
		{"ingest", b.ingestRate, false},
		{"latency", b.ackLatency, false},
		{"import", b.importRate, false},
		{"fanout", b.fanout, false},
		{"digest", b.digest, false},
		{"imap", b.imapArchive, false},
		{"web", b.webArchive, false},
		{"web-peers", b.webPeers, true},
		{"nntp-peers", b.nntpPeers, true},
		{"load", b.load, true},
	}
	for _, s := range steps {
		if (len(o.Only) > 0 || s.byName) && !o.Only[s.name] {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

type runner struct {
	o     Options
	piEnv []string // the public-inbox inbox's environment, once built
}

// report prints one figure.
func (b *runner) report(name string, value float64, unit string) {
	format := "BENCH %s %.0f %s\n"
	if value < 100 {
		format = "BENCH %s %.2f %s\n"
	}
	fmt.Fprintf(b.o.Out, format, name, value, unit)
}

// quantile is the q-quantile of d (nearest rank) in milliseconds; 0 for
// no samples.
func quantile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

func (b *runner) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, "bench: "+format+"\n", args...)
}

// server is a running parley serve.
type server struct {
	cmd     *exec.Cmd
	env     []string
	ready   map[string]string
	done    chan error
	stopped bool // stop was called: a deferred stop does nothing
}

// startServer starts parley serve with its own data directory.
func (b *runner) startServer(ctx context.Context, name string, extraEnv ...string) (*server, error) {
	data := filepath.Join(b.o.WorkDir, name)
	env := append(os.Environ(), extraEnv...)
	env = append(env, "PARLEY_DATA_DIR="+data, "PARLEY_DEMO_LIST=", "PARLEY_LOG_LEVEL=warn",
		"PARLEY_SMTP_LISTEN=127.0.0.1:0", "PARLEY_IMAP_LISTEN=127.0.0.1:0", "PARLEY_HTTP_LISTEN=127.0.0.1:0", "PARLEY_NNTP_LISTEN=127.0.0.1:0",
		"PARLEY_SMTP_MAX_CONNECTIONS_PER_IP=1000",
		// DNS only on loopback, where nothing answers: lookups (DMARC
		// policies of the posters' domains) fail at once, as in tests.
		"PARLEY_DNS_RESOLVER=127.0.0.1:1")
	cmd := exec.Command(b.o.Parley, "serve")
	cmd.Env = env
	cmd.Stderr = b.o.Log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, env: env, done: make(chan error, 1)}
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { io.Copy(io.Discard, out); s.done <- cmd.Wait() }()
	if err != nil || json.Unmarshal([]byte(line), &s.ready) != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("parley serve did not become ready: %q %v", line, err)
	}
	return s, nil
}

func (s *server) stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("parley serve did not stop")
	}
}

// cli runs a parley command against the server's data directory.
func (s *server) cli(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.cmd.Path, args...)
	cmd.Env = s.env
	cmd.Stdin = stdin
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("parley %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return string(out), nil
}

// listWithMembers creates a list with n members.
func (s *server) listWithMembers(ctx context.Context, list string, n int) error {
	if _, err := s.cli(ctx, nil, "list", "create", list, "--post-policy", "open"); err != nil {
		return err
	}
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "member%d@example.net\n", i)
	}
	_, err := s.cli(ctx, strings.NewReader(sb.String()), "member", "add", "--quiet", list, "--file", "-")
	return err
}
