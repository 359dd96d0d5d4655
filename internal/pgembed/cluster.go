// Package pgembed owns the embedded PostgreSQL cluster: the private server
// parley runs under its data directory when no database URL is configured,
// so that `make run` and `make test` need nothing but the PostgreSQL server
// binaries.
//
// Several parley processes may want the same cluster at once: `parley serve`
// and CLI commands run beside it, or two CLI commands. Ownership is decided
// with three flock(2) files, which the kernel releases however a process
// dies:
//
//   - cluster.lock, held exclusively by the owner: the one process that runs
//     the postmaster as its child. The child gets SIGINT (fast shutdown) if
//     the owner dies, even by kill -9, so no postgres outlives parley.
//   - users.lock, held shared by every other process using the cluster. The
//     owner takes it exclusively before stopping the server, so it waits for
//     those users (briefly for serve, longer for a command).
//   - serve.lock, held by `parley serve`, so only one serve runs per data
//     directory. Serve always owns the cluster: if a command owns it, serve
//     waits for that command to finish.
//
// Nothing in this package is a fake: it runs the real initdb and postgres.
// We write our own instead of using an embedded-postgres library because
// those download binaries at run time (impossible here, and unwelcome in
// production) and none handles running as root or sharing with the CLI.
package pgembed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/lib/pq" // driver for readiness checks

	"golang.org/x/sys/unix"
)

// Role says why a process opens the cluster.
type Role int

const (
	// RoleCommand is a short-lived CLI command: it joins a running cluster or
	// starts one for its own duration.
	RoleCommand Role = iota
	// RoleServe is `parley serve`: at most one per data directory, and it
	// always owns the cluster it uses.
	RoleServe
)

// Options configure Open.
type Options struct {
	// Dir is the cluster's home (for parley, <data_dir>/postgres). It holds
	// pgdata/, the socket directory run/, the lock files and postgres.log.
	Dir string
	// Role is RoleServe or RoleCommand.
	Role Role
	// Database is created on first start when missing (default "parley").
	Database string
	// Fast trades durability for speed (no fsync): for test clusters only.
	Fast bool
	// StartTimeout bounds initdb, start-up and waiting for other processes
	// (default 60s).
	StartTimeout time.Duration
	// UserGrace is how long the owner waits for other processes to finish
	// before stopping the server (default 3s for serve, 60s for commands).
	UserGrace time.Duration
	// Logger receives lifecycle events.
	Logger *slog.Logger
}

// Superuser is the role initdb creates; trust authentication over the
// socket (reachable only by the cluster's OS user and root) lets parley in.
const Superuser = "parley"

// Cluster is an embedded PostgreSQL cluster in use by this process.
type Cluster struct {
	opts    Options
	log     *slog.Logger
	pgdata  string
	sockDir string
	run     *runAs
	serve   *flockFile
	owner   *flockFile // non-nil when this process owns the postmaster
	users   *flockFile // held shared when this process is a user
	proc    *postmaster
}

// Open starts the cluster under opts.Dir (creating it on first use) or joins
// the one another parley process runs there. Close must be called.
func Open(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Database == "" {
		opts.Database = "parley"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.UserGrace == 0 {
		opts.UserGrace = 60 * time.Second
		if opts.Role == RoleServe {
			opts.UserGrace = 3 * time.Second
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	c = &Cluster{
		opts:    opts,
		log:     opts.Logger.With("component", "pgembed"),
		pgdata:  filepath.Join(dir, "pgdata"),
		sockDir: filepath.Join(dir, "run"),
	}
	if len(c.sockDir)+len("/.s.PGSQL.5432") > 107 {
		return nil, fmt.Errorf("embedded PostgreSQL: %s is too long a path for a Unix socket; choose a shorter data_dir", c.sockDir)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	defer func() {
		if err != nil {
			c.Close(context.WithoutCancel(ctx))
			c = nil
		}
	}()
	if c.run, err = currentRunAs(); err != nil {
		return c, err
	}
	if err := c.prepareDirs(dir); err != nil {
		return c, err
	}
	if opts.Role == RoleServe {
		if err := c.lockServe(dir); err != nil {
			return c, err
		}
	}
	return c, c.acquire(ctx, dir)
}

// lockServe makes sure only one `parley serve` uses this data directory.
func (c *Cluster) lockServe(dir string) error {
	l, err := openLock(filepath.Join(dir, "serve.lock"))
	if err != nil {
		return err
	}
	c.serve = l
	ok, err := l.try(unix.LOCK_EX)
	if err != nil {
		return err
	}
	if !ok {
		b, _ := os.ReadFile(filepath.Join(dir, "serve.lock"))
		return fmt.Errorf("another parley serve (pid %s) is running with this data directory", strings.TrimSpace(string(b)))
	}
	if err := l.f.Truncate(0); err == nil {
		fmt.Fprintf(l.f, "%d\n", os.Getpid())
	}
	return nil
}

// acquire becomes the owner (starting the postmaster) or a user of the
// running one, following the protocol in the package doc.
func (c *Cluster) acquire(ctx context.Context, dir string) error {
	owner, err := openLock(filepath.Join(dir, "cluster.lock"))
	if err != nil {
		return err
	}
	users, err := openLock(filepath.Join(dir, "users.lock"))
	if err != nil {
		owner.close()
		return err
	}
	waiting := false
	for {
		ok, err := owner.try(unix.LOCK_EX)
		if err != nil {
			return err
		}
		if ok {
			users.close()
			c.owner = owner
			return c.startOwned(ctx)
		}
		if c.opts.Role == RoleCommand {
			// Wait out an owner that is stopping (it holds users.lock
			// exclusively), then look again: it may be gone.
			if err := users.wait(ctx, unix.LOCK_SH); err != nil {
				return fmt.Errorf("embedded PostgreSQL: waiting for another parley process: %w", err)
			}
			if ok, err := owner.try(unix.LOCK_EX); err != nil || ok {
				users.unlock()
				if err != nil {
					return err
				}
				users.close()
				c.owner = owner
				return c.startOwned(ctx)
			}
			owner.close()
			c.users = users
			c.log.Debug("joined running embedded PostgreSQL", "event", "pg_joined")
			return c.waitReady(ctx, nil)
		}
		if !waiting {
			c.log.Info("waiting for a parley command to finish with the embedded database", "event", "pg_wait_owner")
			waiting = true
		}
		select {
		case <-ctx.Done():
			owner.close()
			users.close()
			return fmt.Errorf("embedded PostgreSQL: another parley process kept the database for %s", c.opts.StartTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startOwned runs initdb when needed, clears what a dead owner left behind,
// and starts the postmaster as this process's child.
func (c *Cluster) startOwned(ctx context.Context) error {
	want, err := c.clusterVersion()
	if err != nil {
		return err
	}
	bins, err := FindBinaries(ctx, want)
	if err != nil {
		return err
	}
	if want == 0 {
		if err := c.initdb(ctx, bins); err != nil {
			return err
		}
	}
	if err := c.recoverStale(ctx); err != nil {
		return err
	}
	if err := c.startPostmaster(bins); err != nil {
		return err
	}
	if err := c.waitReady(ctx, c.proc.done); err != nil {
		return err
	}
	return c.ensureDatabase(ctx)
}

// DSN returns a lib/pq connection string for database name (the
// configured database when name is empty).
func (c *Cluster) DSN(name string) string {
	if name == "" {
		name = c.opts.Database
	}
	return fmt.Sprintf("host=%s port=5432 user=%s dbname=%s sslmode=disable",
		quoteDSN(c.sockDir), Superuser, quoteDSN(name))
}

func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Exited is closed when the postmaster this process runs exits on its own;
// it is nil (never ready) when this process is not the owner.
func (c *Cluster) Exited() <-chan struct{} {
	if c == nil || c.proc == nil {
		return nil
	}
	return c.proc.done
}

// Owner reports whether this process runs the postmaster.
func (c *Cluster) Owner() bool { return c.owner != nil }

// Close leaves the cluster. The owner waits up to UserGrace for other
// processes to finish, then stops the server and waits for it to exit.
func (c *Cluster) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	var err error
	if c.owner != nil {
		err = c.stopOwned(ctx)
	}
	c.users.close()
	c.owner.close()
	c.serve.close()
	c.users, c.owner, c.serve = nil, nil, nil
	return err
}

func (c *Cluster) stopOwned(ctx context.Context) error {
	if c.proc == nil {
		return nil
	}
	users, err := openLock(filepath.Join(filepath.Dir(c.pgdata), "users.lock"))
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, c.opts.UserGrace)
		if werr := users.wait(wctx, unix.LOCK_EX); werr != nil {
			c.log.Warn("stopping embedded PostgreSQL while other parley commands still use it", "event", "pg_stop_forced")
		}
		cancel()
		defer users.close() // held until the server is gone, see package doc
	}
	return c.proc.stop(c.log)
}

// ensureDatabase creates the configured database on first start.
func (c *Cluster) ensureDatabase(ctx context.Context) error {
	db, err := sql.Open("postgres", c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, c.opts.Database).Scan(&exists); err != nil {
		return fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(c.opts.Database)); err != nil {
		return fmt.Errorf("embedded PostgreSQL: create database: %w", err)
	}
	c.log.Info("created database", "event", "pg_database_created", "database", c.opts.Database)
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// waitReady polls the socket until the server accepts connections, the
// server process exits (exited non-nil) or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, exited <-chan struct{}) error {
	db, err := sql.Open("postgres", c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("embedded PostgreSQL exited during start-up: %s", c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("embedded PostgreSQL not ready after %s: %v; %s", c.opts.StartTimeout, err, c.logTail())
		case <-t.C:
		}
	}
}

// logTail returns the last lines of postgres.log for error messages.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logPath())
	if err != nil {
		return "no server log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "server log (" + c.logPath() + "): " + strings.Join(lines, " | ")
}

func (c *Cluster) logPath() string { return filepath.Join(filepath.Dir(c.pgdata), "postgres.log") }

// clusterVersion returns the major version of an existing cluster, 0 when
// there is none yet.
func (c *Cluster) clusterVersion() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.pgdata, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	var v int
	if _, err := fmt.Sscan(string(b), &v); err != nil {
		return 0, fmt.Errorf("embedded PostgreSQL: bad %s", filepath.Join(c.pgdata, "PG_VERSION"))
	}
	return v, nil
}
