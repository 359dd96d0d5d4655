package db_test

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestMigrateEmptyDatabase applies every migration to an empty database
// from several goroutines at once: each migration must be applied exactly
// once and the schema must end at the newest version.
func TestMigrateEmptyDatabase(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	// Start from nothing: drop what the template put there.
	if _, err := d.ExecContext(t.Context(), `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = db.Migrate(t.Context(), d.DB, log) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate #%d = %v", i, err)
		}
	}
	cur, latest, err := db.SchemaVersion(t.Context(), d.DB)
	if err != nil || cur != latest || cur < 1 {
		t.Fatalf("SchemaVersion() = %d, %d, %v; want equal and >= 1", cur, latest, err)
	}
	var n int
	if err := d.GetContext(t.Context(), &n, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`); err != nil {
		t.Fatal(err)
	}
	if int64(n) != latest {
		t.Errorf("%d migrations recorded, want %d (each exactly once)", n, latest)
	}
	for _, table := range []string{"domains", "lists", "members"} {
		if _, err := d.ExecContext(t.Context(), `SELECT 1 FROM `+table+` LIMIT 1`); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

// TestMigrateIsIdempotent runs Migrate on an up-to-date database.
func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	if err := db.Migrate(t.Context(), d.DB, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
}

// TestIsConnectionLost: a broken or refused session is "lost" (a write's
// fate unknown); a statement's own failure is not.
func TestIsConnectionLost(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"terminated by the server", &pq.Error{Code: "57P01"}, true},
		{"server starting up", &pq.Error{Code: "57P03"}, true},
		{"connection failure", &pq.Error{Code: "08006"}, true},
		{"bad connection", fmt.Errorf("commit: %w", driver.ErrBadConn), true},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"socket gone", &net.OpError{Op: "dial", Err: syscall.ENOENT}, true},
		{"unique violation", &pq.Error{Code: "23505"}, false},
		{"raised by a function", &pq.Error{Code: "P0001"}, false},
		{"no rows", sql.ErrNoRows, false},
	}
	for _, tt := range tests {
		if got := db.IsConnectionLost(tt.err); got != tt.want {
			t.Errorf("%s: IsConnectionLost = %v, want %v", tt.name, got, tt.want)
		}
	}
}
