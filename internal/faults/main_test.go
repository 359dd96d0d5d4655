package faults

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/pgembed"
	"github.com/parley-list/parley/internal/testutil/parleybin"
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
	// Without the race detector: the suite is about crashes and lost
	// mail, and needs the throughput (the other suites run with -race).
	bin, cleanup, err := parleybin.Build(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building parley:", err)
		os.Exit(1)
	}
	binary = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
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
