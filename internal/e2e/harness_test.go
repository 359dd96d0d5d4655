// Package e2e tests the real parley binary: built once per run, started on
// port 0 with a temporary data directory, driven over its real listeners
// and its CLI, and stopped with real signals.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/testutil/logbuf"
	"github.com/parley-list/parley/internal/testutil/parleybin"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// binary is the parley built by TestMain.
var binary string

func TestMain(m *testing.M) {
	bin, cleanup, err := parleybin.Build(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building parley:", err)
		os.Exit(1)
	}
	binary = bin
	code := pgtest.Run(m)
	cleanup()
	os.Exit(code)
}

// dataDir returns a fresh data directory (see parleybin.Dir).
func dataDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(parleybin.Dir(t), "data")
}

// baseEnv is the environment every parley process gets: loopback port 0
// listeners and the given data directory, nothing from the developer's
// own PARLEY_* settings.
func baseEnv(data string, extra ...string) []string {
	env := parleybin.Env("PARLEY_DATA_DIR="+data,
		"PARLEY_HTTP_LISTEN=127.0.0.1:0", "PARLEY_SMTP_LISTEN=127.0.0.1:0", "PARLEY_IMAP_LISTEN=127.0.0.1:0",
		"PARLEY_NNTP_LISTEN=127.0.0.1:0")
	return append(env, extra...)
}

// result is a finished CLI invocation.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the parley CLI to completion.
func run(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("parley %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustRun runs the CLI and requires success.
func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	return mustRunIn(t, env, "", args...)
}

// mustRunIn is mustRun with stdin.
func mustRunIn(t *testing.T, env []string, stdin string, args ...string) string {
	t.Helper()
	r := run(t, env, stdin, args...)
	if r.code != 0 {
		t.Fatalf("parley %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// server is a running `parley serve`.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	ready   map[string]string
	stderr  *logbuf.Buffer
	exited  chan struct{}
	waitErr error
}

// startServer starts `parley serve` and waits for its readiness line.
func startServer(t *testing.T, env []string) *server {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, stderr: &logbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.kill() })
	select {
	case line, ok := <-lines:
		if !ok {
			<-s.exited
			t.Fatalf("parley serve exited before ready (%v)\nstderr:\n%s", s.waitErr, s.stderr)
		}
		if err := json.Unmarshal([]byte(line), &s.ready); err != nil || s.ready["event"] != "ready" {
			t.Fatalf("readiness line %q: %v", line, err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("parley serve not ready after 90s\nstderr:\n%s", s.stderr)
	}
	t.Logf("parley serve ready in %s: %v", time.Since(start).Round(time.Millisecond), s.ready)
	go func() {
		for line := range lines {
			t.Errorf("parley serve wrote a second line to stdout: %q", line)
		}
	}()
	return s
}

// stop sends SIGTERM and requires a clean exit within 10 s.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
		s.t.Fatalf("parley serve did not exit within 10s of SIGTERM\nstderr:\n%s", s.stderr)
	}
	if s.waitErr != nil {
		s.t.Fatalf("parley serve exit: %v\nstderr:\n%s", s.waitErr, s.stderr)
	}
}

func (s *server) kill() {
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// postgresUnder returns the pids of live postgres processes whose command
// line mentions dir: any that outlive parley are orphans.
func postgresUnder(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			continue
		}
		if strings.Contains(string(cmdline), "postgres") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// noPostgresLeft waits briefly for postgres processes under dir to exit
// and fails the test if any remain.
func noPostgresLeft(t *testing.T, dir string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pids := postgresUnder(dir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("postgres processes %v still running for %s", pids, dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitOutbox waits up to 30 s for n copies in the file relay's outbox
// under data and returns their paths.
func waitOutbox(t *testing.T, data string, n int) []string {
	t.Helper()
	var files []string
	for deadline := time.Now().Add(30 * time.Second); len(files) < n && time.Now().Before(deadline); {
		files, _ = filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
		time.Sleep(50 * time.Millisecond)
	}
	if len(files) != n {
		t.Fatalf("outbox has %d files, want %d", len(files), n)
	}
	return files
}
