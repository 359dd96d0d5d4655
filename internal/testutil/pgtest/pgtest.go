// Package pgtest gives each test its own real PostgreSQL database, cloned
// from a template that already has every migration applied: isolated,
// parallel-safe and fast (a clone takes milliseconds, migrating takes far
// longer).
//
// With PARLEY_TEST_DATABASE_URL set, databases are made on that server
// (the URL's user needs CREATEDB). Without it, the test binary starts its
// own throwaway cluster through internal/pgembed, the same code that runs
// parley's embedded default, so `go test ./...` needs nothing but the
// PostgreSQL server binaries. Tests never skip for lack of a database.
//
// A package that uses pgtest calls it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/pgembed"
	"github.com/parley-list/parley/migrations"
)

// EnvURL names the variable that points tests at an existing server.
const EnvURL = "PARLEY_TEST_DATABASE_URL"

// server is the test binary's database server. It is process-wide because
// a test binary is one process; Main tears it down.
type server struct {
	once     sync.Once
	err      error
	baseDSN  string // a database to connect to for CREATE/DROP DATABASE
	template string
	cluster  *pgembed.Cluster
	tmpDir   string
}

var srv server

// Main runs the package's tests, stops the throwaway cluster, if one was
// started, and exits.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with cleanup of its own: it returns the exit
// code instead of exiting.
func Run(m *testing.M) int {
	code := m.Run()
	if srv.cluster != nil {
		srv.cluster.Close(context.Background())
	}
	if srv.tmpDir != "" {
		os.RemoveAll(srv.tmpDir)
	}
	return code
}

func (s *server) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv(EnvURL); u != "" {
		s.baseDSN = u
	} else {
		dir, err := os.MkdirTemp("", "parley-pgtest-")
		if err != nil {
			return err
		}
		s.tmpDir = dir
		// PostgreSQL may run as another user (when tests run as root): let
		// it traverse, but not list, the directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			return err
		}
		c, err := pgembed.Open(ctx, pgembed.Options{Dir: filepath.Join(dir, "pg"), Fast: true, Database: "postgres"})
		if err != nil {
			return err
		}
		s.cluster = c
		s.baseDSN = c.DSN("postgres")
	}
	return s.ensureTemplate(ctx)
}

// ensureTemplate creates the migrated template database once per set of
// migrations. Its name carries a hash of the migration files, so a changed
// migration gets a new template; an advisory lock makes concurrent test
// binaries sharing one server build it once.
func (s *server) ensureTemplate(ctx context.Context) error {
	s.template = "parley_tmpl_" + migrationsHash()
	admin, err := db.Open(ctx, s.baseDSN, db.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer admin.Close()
	conn, err := admin.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext('parley_pgtest_template'))`); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('parley_pgtest_template'))`)
	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, s.template); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := s.template + "_build"
	if _, err := conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+building); err != nil {
		return err
	}
	tdb, err := db.Open(ctx, withDatabase(s.baseDSN, building), db.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	err = db.Migrate(ctx, tdb.DB, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tdb.Close()
	if err != nil {
		return err
	}
	// Rename only when complete, so a half-built template is never cloned.
	_, err = conn.ExecContext(ctx, `ALTER DATABASE `+building+` RENAME TO `+s.template)
	return err
}

// migrationsHash identifies the current set of migration files (the
// numbered ones, the functions and the pre-release conversion).
func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, p)
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// New returns a connection pool to a fresh, fully migrated database that
// is dropped when the test ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	dsn := NewDSN(t)
	d, err := db.Open(t.Context(), dsn, db.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// NewDSN makes a fresh, fully migrated database and returns its DSN, for
// tests that hand the database to a parley process.
func NewDSN(t testing.TB) string {
	t.Helper()
	srv.once.Do(func() { srv.err = srv.start() })
	if srv.err != nil {
		t.Fatalf("pgtest: starting test database server: %v", srv.err)
	}
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := db.Open(ctx, srv.baseDSN, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE `+srv.template); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	return withDatabase(srv.baseDSN, name)
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := db.Open(ctx, srv.baseDSN, db.Options{MaxOpenConns: 1})
	if err != nil {
		return
	}
	defer admin.Close()
	_, _ = admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
}

// withDatabase returns dsn pointed at database name. It understands both
// URL and key=value connection strings.
func withDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	// lib/pq lets a later key override an earlier one.
	return fmt.Sprintf("%s dbname=%s", dsn, name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ReaderDSN makes a login role that may only read the tables of the
// database at dsn (as deploy/postgres-roles.sql's parley_reader may) and
// returns dsn with that role's credentials. The role goes when the test
// ends. It skips the test where the server won't let dsn's user create
// roles.
func ReaderDSN(t testing.TB, dsn string) string {
	t.Helper()
	role, pw := "reader_"+randomHex(6), randomHex(16)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE ROLE `+role+` LOGIN PASSWORD '`+pw+`'`); err != nil {
		t.Skipf("pgtest: cannot create a read-only role here: %v", err)
	}
	for _, q := range []string{`GRANT USAGE ON SCHEMA public TO ` + role, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ` + role} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("pgtest: %s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if admin, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1}); err == nil {
			_, _ = admin.ExecContext(ctx, `DROP OWNED BY `+role)
			_, _ = admin.ExecContext(ctx, `DROP ROLE `+role)
			admin.Close()
		}
	})
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.User = url.UserPassword(role, pw)
			return u.String()
		}
	}
	return fmt.Sprintf("%s user=%s password=%s", dsn, role, pw)
}
