package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// parley is one `parley serve` process that the suite kills and restarts.
// Its listeners keep their addresses across restarts, as a real server's
// do, so clients simply reconnect.
type parley struct {
	name       string
	env        []string
	smtp, imap string
	logPath    string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newParley(t *testing.T, name, dir string, env []string) *parley {
	p := &parley{name: name, smtp: freeAddr(t), imap: freeAddr(t), logPath: filepath.Join(dir, name+".log")}
	p.env = append(append([]string(nil), env...), "PARLEY_DATA_DIR="+filepath.Join(dir, name),
		"PARLEY_SMTP_LISTEN="+p.smtp, "PARLEY_IMAP_LISTEN="+p.imap, "PARLEY_HTTP_LISTEN=127.0.0.1:0",
		"PARLEY_NNTP_LISTEN=127.0.0.1:0")
	return p
}

// start runs serve until it is ready, trying again while it exits early
// (PostgreSQL may be down: serve refuses to start without its database).
func (p *parley) start(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := p.startOnce(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (p *parley) startOnce(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(binary, "serve")
	cmd.Env = p.env
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			ready <- fmt.Errorf("%s exited before it was ready", p.name)
			return
		}
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line["event"] != "ready" {
			ready <- fmt.Errorf("%s: readiness line %q", p.name, sc.Text())
			return
		}
		ready <- nil
		for sc.Scan() {
		}
	}()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	select {
	case err = <-ready:
	case <-time.After(time.Minute):
		err = fmt.Errorf("%s not ready after a minute", p.name)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		cmd.Process.Kill()
		<-exited
		return err
	}
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.starts++
	p.mu.Unlock()
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *parley) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// stop sends SIGTERM and waits up to 15 s for a clean exit.
func (p *parley) stop() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
		return nil
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not stop within 15s of SIGINT", p.name)
	}
}

// alive reports whether the process is running (it may die on its own,
// which the suite reports: a fault must not take parley down).
func (p *parley) alive() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}
