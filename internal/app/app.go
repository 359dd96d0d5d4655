// Package app is parley's composition root: the one place that turns a
// Config into running parts (database, listeners, workers) and tears them
// down again in order. Nothing else imports everything.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/notify"
	"github.com/parley-list/parley/internal/pgembed"
)

// Version is parley's version, set at build time with
// -ldflags "-X github.com/parley-list/parley/internal/app.Version=…".
var Version = "dev"

// Database is an open, migrated database, together with the embedded
// cluster behind it when there is one.
type Database struct {
	*sqlx.DB
	cluster *pgembed.Cluster
	log     *slog.Logger
	// Notify sends cross-process wake-ups after commits (see notify).
	Notify *notify.Notifier
	// DSN is the connection string, for the LISTEN connection.
	DSN        string
	stopNotify context.CancelFunc
}

// DBRole says whether the database is opened for `parley serve` or a
// short CLI command; it matters only for the embedded cluster.
type DBRole = pgembed.Role

// Database roles.
const (
	RoleServe   = pgembed.RoleServe
	RoleCommand = pgembed.RoleCommand
)

// OpenDatabase connects to the configured database, or starts (or joins)
// the embedded cluster under the data directory when no URL is set, and
// applies pending migrations.
func OpenDatabase(ctx context.Context, cfg config.Config, role DBRole, log *slog.Logger) (*Database, error) {
	d := &Database{log: log}
	dsn := cfg.Database.URL
	if dsn == "" {
		c, err := pgembed.Open(ctx, pgembed.Options{
			Dir:    filepath.Join(cfg.DataDir, "postgres"),
			Role:   role,
			Logger: log,
		})
		if err != nil {
			return nil, err
		}
		d.cluster = c
		dsn = c.DSN("")
	}
	conn, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: cfg.Database.MaxOpenConns})
	if err != nil {
		d.Close(ctx)
		return nil, err
	}
	d.DB = conn
	d.DSN = dsn
	nctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.stopNotify = stop
	d.Notify = notify.New(nctx, func(ctx context.Context, channel, payload string) error {
		_, err := conn.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
		return err
	}, log)
	mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := db.Migrate(mctx, conn.DB, log); err != nil {
		d.Close(ctx)
		return nil, err
	}
	return d, nil
}

// ClusterExited is closed if the embedded PostgreSQL this process runs
// dies; nil when there is none.
func (d *Database) ClusterExited() <-chan struct{} {
	if d.cluster == nil {
		return nil
	}
	return d.cluster.Exited()
}

// Close closes the pool and stops (or leaves) the embedded cluster.
func (d *Database) Close(ctx context.Context) error {
	if d.stopNotify != nil {
		d.stopNotify() // sends what is pending, then stops
		<-d.Notify.Done()
	}
	if d.DB != nil {
		d.DB.Close()
	}
	if d.cluster != nil {
		if err := d.cluster.Close(ctx); err != nil {
			return fmt.Errorf("embedded PostgreSQL: %w", err)
		}
	}
	return nil
}
