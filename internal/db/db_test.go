package db_test

import (
	"io"
	"log/slog"
	"sync"
	"testing"

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
