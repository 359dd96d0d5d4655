// Package db owns parley's connection to PostgreSQL: opening the pool,
// applying the embedded migrations (migrate.go), and the small helpers
// every store uses (a Querier that is either the pool or a transaction,
// InTx). It owns one table, schema_functions (see migrate.go).
//
// Each domain package (lists, members, …) owns its own SQL and takes a
// Querier, so one transaction can span several of them.
package db

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// Querier is what stores need: *sqlx.DB and *sqlx.Tx both satisfy it.
type Querier interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

var (
	_ Querier = (*sqlx.DB)(nil)
	_ Querier = (*sqlx.Tx)(nil)
)

// Options configure Open.
type Options struct {
	MaxOpenConns int
	PingTimeout  time.Duration
}

// Open connects to dsn and checks the connection.
func Open(ctx context.Context, dsn string, opts Options) (*sqlx.DB, error) {
	c, err := pq.NewConnector(withBinaryParameters(dsn))
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	c.Dialer(bufferedDialer{})
	db := sqlx.NewDb(sql.OpenDB(c), "postgres")
	if opts.MaxOpenConns > 0 {
		db.SetMaxOpenConns(opts.MaxOpenConns)
		db.SetMaxIdleConns(opts.MaxOpenConns)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	if opts.PingTimeout == 0 {
		opts.PingTimeout = 10 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, opts.PingTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return db, nil
}

// bufferedDialer gives every connection a 64 KiB read buffer. lib/pq
// reads through a 4 KiB one, so a query returning megabytes of message
// bodies costs a read system call every few kilobytes; with this, every
// few dozen.
type bufferedDialer struct{ d net.Dialer }

func (b bufferedDialer) Dial(network, address string) (net.Conn, error) {
	return b.DialContext(context.Background(), network, address)
}

func (b bufferedDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return b.DialContext(ctx, network, address)
}

func (b bufferedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := b.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &readBufferedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

type readBufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readBufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// withBinaryParameters turns on lib/pq's binary_parameters unless the DSN
// sets it: queries with parameters then take one round trip instead of
// two (no separate prepare step), which halves the latency of every
// statement on the intake path. []byte parameters are then sent as
// binary, which suits bytea; callers pass JSON as string, not []byte.
func withBinaryParameters(dsn string) string {
	if strings.Contains(dsn, "binary_parameters") {
		return dsn
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("binary_parameters", "yes")
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " binary_parameters=yes"
}

// InTx runs fn in a transaction and commits it when fn returns nil. Any
// error rolls everything back.
func InTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// and of which constraint.
func IsUniqueViolation(err error) (constraint string, ok bool) {
	if pe := pq.As(err, pqerror.UniqueViolation); pe != nil {
		return pe.Constraint, true
	}
	return "", false
}

// IsConnectionLost reports whether err means the database session broke
// (the server went away, restarted or cut the connection, or could not be
// reached) rather than a statement failing. After such an error a write
// may or may not have been committed — its acknowledgement can be lost
// after the commit — and only asking again tells.
func IsConnectionLost(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		// 08: connection exception; 57: operator intervention (shutdown,
		// terminated session, not yet accepting connections).
		c := pe.Code.Class()
		return c == "08" || c == "57"
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EPIPE)
}

// ErrNoRows is sql.ErrNoRows, re-exported so stores need not import
// database/sql just to compare against it.
var ErrNoRows = sql.ErrNoRows

// IsNoRows reports whether err means a query found nothing.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
