package faults

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/pgembed"
)

var (
	duration = flag.Duration("faults.duration", 40*time.Second, "how long faults are injected into the workload")
	bigSize  = flag.Int("faults.members", 1000, "members of the largest list")
	posters  = flag.Int("faults.posters", 4, "concurrent SMTP clients")
	seed     = flag.Int64("faults.seed", 0, "random seed (0: from the clock; printed)")
)

// binary is the parley built by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "parley-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "parley")
	// Without the race detector: the suite is about crashes and lost
	// mail, and needs the throughput (the other suites run with -race).
	build := exec.Command("go", "build", "-o", binary, "github.com/parley-list/parley/cmd/parley")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building parley:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// workDir is a directory for the run that an unprivileged PostgreSQL
// account can traverse when tests run as root; kept when the test fails.
func workDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "parley-faults-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("work directory kept: %s", base)
			return
		}
		os.RemoveAll(base)
	})
	return base
}

// database is the PostgreSQL cluster the parley processes share, which the
// suite stops, crashes and restarts.
type database struct {
	dir     string
	cluster *pgembed.Cluster
}

func startDatabase(ctx context.Context, dir string) (*database, error) {
	d := &database{dir: dir}
	return d, d.start(ctx)
}

func (d *database) start(ctx context.Context) error {
	// Not Fast: that turns synchronous_commit off, and a crash then
	// loses commits PostgreSQL has acknowledged, which is what the suite
	// must be able to tell from parley's own mistakes.
	c, err := pgembed.Open(ctx, pgembed.Options{Dir: d.dir, Role: pgembed.RoleCommand,
		UserGrace: time.Second, Database: "parley"})
	if err != nil {
		return err
	}
	d.cluster = c
	return nil
}

func (d *database) dsn() string { return d.cluster.DSN("parley") }

// stop shuts PostgreSQL down: fast (SIGINT: sessions cut, transactions
// rolled back) or as a crash (SIGQUIT: immediate, recovery at next start).
func (d *database) stop(ctx context.Context, crash bool) error {
	if crash {
		b, err := os.ReadFile(filepath.Join(d.dir, "pgdata", "postmaster.pid"))
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
		if err != nil {
			return err
		}
		if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
			return err
		}
		select {
		case <-d.cluster.Exited():
		case <-time.After(10 * time.Second):
			return errors.New("postgres did not exit after SIGQUIT")
		}
	}
	err := d.cluster.Close(ctx)
	d.cluster = nil
	return err
}
