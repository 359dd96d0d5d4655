package pgembed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runAs is the OS identity PostgreSQL runs under. PostgreSQL refuses to run
// as root, so a root parley runs it as an unprivileged account.
type runAs struct {
	uid, gid uint32
	name     string
	drop     bool // true when we are root and must switch to uid/gid
}

// unprivilegedAccounts are tried in order when parley runs as root.
var unprivilegedAccounts = []string{"postgres", "nobody"}

func currentRunAs() (*runAs, error) {
	if os.Geteuid() != 0 {
		return &runAs{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil
	}
	for _, name := range unprivilegedAccounts {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &runAs{uid: uint32(uid), gid: uint32(gid), name: name, drop: true}, nil
	}
	return nil, errors.New("embedded PostgreSQL: running as root and no unprivileged account (postgres or nobody) to run PostgreSQL as; create a postgres user or run parley as another user")
}

// command builds an exec.Cmd that runs as the cluster's OS user.
func (r *runAs) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if r.drop {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: r.uid, Gid: r.gid, NoSetGroups: false, Groups: []uint32{}}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	return cmd
}

// prepareDirs creates the cluster home. When PostgreSQL runs as another
// user, it must be able to reach its directories: the home is made
// traversable (0711, no listing) and every ancestor is checked, so a
// permission problem is one clear error instead of an initdb failure.
func (c *Cluster) prepareDirs(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	if c.run.drop {
		if err := os.Chmod(dir, 0o711); err != nil {
			return err
		}
		if err := checkTraversable(dir, c.run); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(c.sockDir, 0o700); err != nil {
		return fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	if c.run.drop {
		return os.Chown(c.sockDir, int(c.run.uid), int(c.run.gid))
	}
	return nil
}

// checkTraversable reports an ancestor of dir that user r cannot enter.
func checkTraversable(dir string, r *runAs) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		mode := fi.Mode().Perm()
		canX := mode&0o001 != 0 || st.Uid == r.uid && mode&0o100 != 0 || st.Gid == r.gid && mode&0o010 != 0
		if !canX {
			return fmt.Errorf("embedded PostgreSQL runs as user %s, which cannot enter %s: make it traversable (chmod o+x %s) or choose a data_dir elsewhere", r.name, d, d)
		}
		if d == "/" || d == filepath.Dir(d) {
			return nil
		}
	}
}

// initdb creates a new cluster. It works in pgdata.init and renames it into
// place only when initdb succeeded, so an interrupted first start never
// leaves a half-made cluster that later starts would trust.
func (c *Cluster) initdb(ctx context.Context, bins Binaries) error {
	tmp := c.pgdata + ".init"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	if c.run.drop {
		if err := os.Chown(tmp, int(c.run.uid), int(c.run.gid)); err != nil {
			return err
		}
	}
	args := []string{"-D", tmp, "-U", Superuser, "--auth-local=trust", "--auth-host=reject",
		"--encoding=UTF8", "--locale=C", "--no-instructions"}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	cmd := c.run.command(bins.path("initdb"), args...)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := runCtx(ctx, cmd); err != nil {
		return fmt.Errorf("embedded PostgreSQL: initdb failed: %v: %s", err, strings.TrimSpace(out.String()))
	}
	if err := os.Rename(tmp, c.pgdata); err != nil {
		return err
	}
	c.log.Info("created PostgreSQL cluster", "event", "pg_initdb", "dir", c.pgdata,
		"version", bins.Version, "os_user", c.run.name, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// runCtx runs cmd and kills it if ctx ends first.
func runCtx(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

// recoverStale deals with what a dead owner may have left. We hold
// cluster.lock, so no live parley runs this cluster: a postmaster.pid
// naming a live postgres on our pgdata is an orphan (shut it down); any
// other postmaster.pid is stale (remove it, since PostgreSQL itself would
// refuse to start if the pid had been reused by an unrelated process).
func (c *Cluster) recoverStale(ctx context.Context) error {
	pidFile := filepath.Join(c.pgdata, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	if pid > 0 && c.isOurPostmaster(pid) {
		c.log.Warn("stopping orphaned PostgreSQL left by a previous parley", "event", "pg_orphan", "pid", pid)
		if err := stopPid(ctx, pid); err != nil {
			return fmt.Errorf("embedded PostgreSQL: orphan postmaster %d: %w", pid, err)
		}
	}
	if _, err := os.Stat(pidFile); err == nil {
		c.log.Warn("removing stale postmaster.pid", "event", "pg_stale_pid", "pid", pid)
		return os.Remove(pidFile)
	}
	return nil
}

// isOurPostmaster reports whether pid is a postgres process for our pgdata.
func (c *Cluster) isOurPostmaster(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil && !procfsAvailable()
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 0 && filepath.Base(args[0]) == "postgres" && strings.Contains(string(cmdline), c.pgdata+"\x00")
}

func procfsAvailable() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}

// stopPid asks a postmaster for a fast shutdown and escalates if needed.
func stopPid(ctx context.Context, pid int) error {
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 15 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		_ = syscall.Kill(pid, step.sig)
		deadline := time.Now().Add(step.wait)
		for time.Now().Before(deadline) {
			if syscall.Kill(pid, 0) != nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return errors.New("would not exit")
}

// postmaster is the running server, a child of this process.
type postmaster struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

// startPostmaster starts postgres in the foreground as our child. It asks
// the kernel to send it SIGINT (fast shutdown) should we die, and puts it in
// its own process group so that a terminal's Ctrl-C reaches parley only:
// parley finishes its work first and then stops the database itself.
func (c *Cluster) startPostmaster(bins Binaries) error {
	logf, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	args := []string{"-D", c.pgdata, "-k", c.sockDir, "-p", "5432",
		"-c", "listen_addresses=", "-c", "unix_socket_permissions=0700",
		"-c", "max_connections=200", "-c", "logging_collector=off",
		// JIT compilation rarely pays for parley's short queries, and it
		// needs writable+executable memory, which hardened units forbid.
		"-c", "jit=off"}
	if c.opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := c.run.command(bins.path("postgres"), args...)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	cmd.Dir = c.pgdata
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("embedded PostgreSQL: start: %w", err)
	}
	p := &postmaster{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.proc = p
	c.log.Info("started embedded PostgreSQL", "event", "pg_started", "pid", cmd.Process.Pid, "socket_dir", c.sockDir)
	return nil
}

// stop asks for a fast shutdown and waits, escalating to an immediate
// shutdown and then SIGKILL if the server hangs.
func (p *postmaster) stop(log *slog.Logger) error {
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 5 * time.Second}, {syscall.SIGQUIT, 2 * time.Second}, {syscall.SIGKILL, 2 * time.Second}}
	for _, s := range steps {
		select {
		case <-p.done:
			log.Info("stopped embedded PostgreSQL", "event", "pg_stopped")
			return nil
		default:
		}
		_ = p.cmd.Process.Signal(s.sig)
		select {
		case <-p.done:
			log.Info("stopped embedded PostgreSQL", "event", "pg_stopped", "signal", s.sig.String())
			return nil
		case <-time.After(s.wait):
			log.Warn("embedded PostgreSQL slow to stop", "event", "pg_stop_slow", "signal", s.sig.String())
		}
	}
	return errors.New("embedded PostgreSQL would not exit")
}
