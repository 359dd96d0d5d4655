package pgembed

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as a helper process: with PGEMBED_HELPER_DIR set, the
// test binary opens that cluster, prints "ready", and waits to be killed.
// That is how the tests kill an owner with SIGKILL.
func TestMain(m *testing.M) {
	if dir := os.Getenv("PGEMBED_HELPER_DIR"); dir != "" {
		c, err := Open(context.Background(), Options{Dir: dir, Fast: true})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready", c.proc.cmd.Process.Pid)
		select {}
	}
	os.Exit(m.Run())
}

// clusterDir returns a cluster home in a fresh directory that the
// unprivileged PostgreSQL account can reach when the tests run as root.
func clusterDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "pgembed-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return filepath.Join(base, "pg")
}

func open(t *testing.T, opts Options) *Cluster {
	t.Helper()
	opts.Fast = true
	c, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", opts.Dir, err)
	}
	return c
}

func query(t *testing.T, c *Cluster, q string) string {
	t.Helper()
	db, err := sql.Open("postgres", c.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRowContext(t.Context(), q).Scan(&s); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return s
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie (state Z) has exited; only its parent has not reaped it yet.
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func TestFirstStartAndRestart(t *testing.T) {
	t.Parallel()
	dir := clusterDir(t)
	c := open(t, Options{Dir: dir, Role: RoleServe})
	if !c.Owner() {
		t.Fatal("first Open is not the owner")
	}
	if got := query(t, c, `SELECT current_database()`); got != "parley" {
		t.Errorf("current_database() = %q, want parley", got)
	}
	if got := query(t, c, `SHOW server_encoding`); got != "UTF8" {
		t.Errorf("server_encoding = %q, want UTF8", got)
	}
	if got := query(t, c, `SHOW listen_addresses`); got != "" {
		t.Errorf("listen_addresses = %q, want none (socket only)", got)
	}
	query(t, c, `CREATE TABLE kept (x int) ; SELECT 1::text`)
	pid := c.proc.cmd.Process.Pid
	if err := c.Close(t.Context()); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if alive(pid) {
		t.Fatalf("postmaster %d still running after Close", pid)
	}
	c = open(t, Options{Dir: dir, Role: RoleServe})
	defer c.Close(t.Context())
	if got := query(t, c, `SELECT count(*)::text FROM kept`); got != "0" {
		t.Errorf("table from the first run: count = %q", got)
	}
}

// TestSharing checks the ownership protocol: a command joins a running
// cluster, a second serve is refused, and a serve waits for a command that
// owns the cluster.
func TestSharing(t *testing.T) {
	t.Parallel()
	dir := clusterDir(t)
	owner := open(t, Options{Dir: dir, Role: RoleCommand})
	user := open(t, Options{Dir: dir, Role: RoleCommand})
	if user.Owner() {
		t.Fatal("second Open also claims to own the cluster")
	}
	query(t, user, `SELECT 1::text`)

	// The owner's Close waits for the user; the user leaves shortly after.
	closed := make(chan error, 1)
	go func() { closed <- owner.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("owner closed (%v) while a user was still connected", err)
	case <-time.After(300 * time.Millisecond):
	}
	query(t, user, `SELECT 2::text`)
	user.Close(t.Context())
	if err := <-closed; err != nil {
		t.Fatalf("owner Close() = %v", err)
	}

	// A command owns the cluster; serve waits for it, then owns it.
	cmd := open(t, Options{Dir: dir, Role: RoleCommand})
	go func() {
		time.Sleep(300 * time.Millisecond)
		cmd.Close(context.Background())
	}()
	serve := open(t, Options{Dir: dir, Role: RoleServe})
	defer serve.Close(t.Context())
	if !serve.Owner() {
		t.Fatal("serve does not own the cluster")
	}
	_, err := Open(t.Context(), Options{Dir: dir, Role: RoleServe, Fast: true})
	if err == nil || !strings.Contains(err.Error(), "another parley serve") {
		t.Fatalf("second serve: Open() = %v, want 'another parley serve' error", err)
	}
}

// TestOwnerKilled kills the owning process with SIGKILL and checks that the
// postmaster does not outlive it and that the next Open recovers.
func TestOwnerKilled(t *testing.T) {
	t.Parallel()
	dir := clusterDir(t)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "PGEMBED_HELPER_DIR="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _ := out.Read(buf)
	fields := strings.Fields(string(buf[:n]))
	if len(fields) != 2 || fields[0] != "ready" {
		helper.Process.Kill()
		t.Fatalf("helper said %q", buf[:n])
	}
	pgPid, _ := strconv.Atoi(fields[1])
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for alive(pgPid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pgPid) {
		syscall.Kill(pgPid, syscall.SIGKILL)
		t.Fatalf("postmaster %d survived its owner's SIGKILL", pgPid)
	}
	c := open(t, Options{Dir: dir, Role: RoleServe})
	defer c.Close(t.Context())
	query(t, c, `SELECT 1::text`)
}

// TestStalePidFile starts a cluster whose postmaster.pid names a process
// that is not PostgreSQL (as after a crash and pid reuse).
func TestStalePidFile(t *testing.T) {
	t.Parallel()
	dir := clusterDir(t)
	c := open(t, Options{Dir: dir, Role: RoleCommand})
	c.Close(t.Context())
	pidFile := filepath.Join(dir, "pgdata", "postmaster.pid")
	stale := fmt.Sprintf("%d\n%s\n", os.Getpid(), filepath.Join(dir, "pgdata"))
	if err := os.WriteFile(pidFile, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	c = open(t, Options{Dir: dir, Role: RoleCommand})
	defer c.Close(t.Context())
	query(t, c, `SELECT 1::text`)
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	b, err := FindBinaries(t.Context(), 0)
	if err != nil {
		t.Fatalf("FindBinaries() = %v", err)
	}
	if b.Version < 14 {
		t.Errorf("version %d, want >= 14", b.Version)
	}
	if _, err := FindBinaries(t.Context(), 3); err == nil || !strings.Contains(err.Error(), "PostgreSQL 3") {
		t.Errorf("FindBinaries(3) = %v, want a version mismatch error", err)
	}
}
