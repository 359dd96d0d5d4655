package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/parley-list/parley/migrations"
)

// Migrate brings the schema up to date, in three steps, each under the
// migration advisory lock so that processes starting together do each
// thing exactly once:
//
//  1. a database of the pre-release chain (see migrations/prerelease) is
//     converted to the baseline;
//  2. goose applies the numbered migrations that are pending;
//  3. the SQL functions whose files changed are replaced.
func Migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	if err := convertPrerelease(ctx, db, log); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		log.Info("applied migration", "event", "migrated", "migration", r.Source.Path, "duration", r.Duration.Round(time.Millisecond))
		if r.Error == nil && r.Source.Version == caseMergeVersion {
			reportCaseMerges(ctx, db, log)
		}
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := applyFunctions(ctx, db, migrations.FS, log); err != nil {
		return fmt.Errorf("migrate: functions: %w", err)
	}
	return nil
}

// SchemaVersion returns the applied and the newest known migration version.
func SchemaVersion(ctx context.Context, db *sql.DB) (current, latest int64, err error) {
	p, err := newProvider(db)
	if err != nil {
		return 0, 0, err
	}
	return p.GetVersions(ctx)
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLock))
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
}

// migrationLock is the advisory lock every step of Migrate holds: goose's
// own default key, so a goose run by other means waits for us too.
const migrationLock = lock.DefaultLockID

// inLockedTx runs fn in a transaction that holds the migration lock.
func inLockedTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// prereleaseVersion is the last version of the squashed pre-release chain,
// the only one migrations/prerelease converts from.
const prereleaseVersion = 18

// convertPrerelease converts a database of the pre-release chain to the
// baseline layout. Such a database has goose versions above 1 but no
// schema_functions table, which the baseline has always had.
func convertPrerelease(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	return inLockedTx(ctx, db, func(tx *sql.Tx) error {
		var goose, functions bool
		err := tx.QueryRowContext(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL,
			to_regclass('schema_functions') IS NOT NULL`).Scan(&goose, &functions)
		if err != nil || !goose || functions {
			return err
		}
		var version int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&version); err != nil {
			return err
		}
		if version <= 1 {
			return nil // a baseline being applied, or nothing yet
		}
		if version != prereleaseVersion {
			return fmt.Errorf("the database is at pre-release migration %d; only %d can be converted: "+
				"run a parley built before the baseline (2026-12) once to bring it to %d, or start from an empty database",
				version, prereleaseVersion, prereleaseVersion)
		}
		script, err := fs.ReadFile(migrations.FS, "prerelease/from-18.sql")
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			return fmt.Errorf("converting the pre-release schema: %w", err)
		}
		log.Info("converted a pre-release database to the baseline schema", "event", "migrated", "migration", "prerelease/from-18.sql")
		return nil
	})
}

// function is one file of migrations/functions.
type function struct {
	name string // the function's name, from the file's
	text string
	hash []byte
}

func functionFiles(fsys fs.FS) ([]function, error) {
	files, err := fs.Glob(fsys, "functions/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []function
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(b)
		out = append(out, function{name: strings.TrimSuffix(path.Base(f), ".sql"), text: string(b), hash: h[:]})
	}
	return out, nil
}

// applyFunctions makes the database's functions those of fsys's
// functions/ (migrations.FS but in tests), in one transaction: a function whose file changed
// is dropped (by name: parley never overloads one) and created from its
// file, one whose file is gone is dropped, and the rest are left alone.
// Dropping first lets a change alter a function's parameters or result,
// which CREATE OR REPLACE cannot; a function's callers are PL/pgSQL
// bodies, which look it up by name when they run, so none of them breaks.
func applyFunctions(ctx context.Context, db *sql.DB, fsys fs.FS, log *slog.Logger) error {
	want, err := functionFiles(fsys)
	if err != nil {
		return err
	}
	return inLockedTx(ctx, db, func(tx *sql.Tx) error {
		have, err := appliedFunctions(ctx, tx)
		if err != nil {
			return err
		}
		for _, f := range want {
			if h, ok := have[f.name]; ok && string(h) == string(f.hash) {
				delete(have, f.name)
				continue
			}
			delete(have, f.name)
			if err := replaceFunction(ctx, tx, f); err != nil {
				return err
			}
			log.Info("applied SQL function", "event", "migrated", "migration", "functions/"+f.name+".sql")
		}
		for name := range have {
			if _, err := tx.ExecContext(ctx, `DROP FUNCTION IF EXISTS `+quoteIdent(name)); err != nil {
				return fmt.Errorf("drop %s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM schema_functions WHERE name = $1`, name); err != nil {
				return err
			}
			log.Info("dropped SQL function", "event", "migrated", "migration", "functions/"+name+".sql")
		}
		return nil
	})
}

func appliedFunctions(ctx context.Context, tx *sql.Tx) (map[string][]byte, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, sha256 FROM schema_functions`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string][]byte{}
	for rows.Next() {
		var name string
		var h []byte
		if err := rows.Scan(&name, &h); err != nil {
			return nil, err
		}
		have[name] = h
	}
	return have, rows.Err()
}

func replaceFunction(ctx context.Context, tx *sql.Tx, f function) error {
	if _, err := tx.ExecContext(ctx, `DROP FUNCTION IF EXISTS `+quoteIdent(f.name)); err != nil {
		return fmt.Errorf("functions/%s.sql: drop: %w", f.name, err)
	}
	if _, err := tx.ExecContext(ctx, f.text); err != nil {
		return fmt.Errorf("functions/%s.sql: %w", f.name, err)
	}
	var made bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = $1
		AND pronamespace = current_schema()::regnamespace)`, f.name).Scan(&made); err != nil {
		return err
	}
	if !made {
		return errors.New("functions/" + f.name + ".sql does not create a function named " + f.name)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_functions (name, sha256) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()`, f.name, f.hash)
	return err
}

// quoteIdent quotes a function name taken from a file name.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// caseMergeVersion is the migration that merged members whose addresses
// differ only in case (00003_address_case.sql).
const caseMergeVersion = 3

// reportCaseMerges says, once, which subscriptions that migration merged;
// member_case_merges keeps them for later.
func reportCaseMerges(ctx context.Context, db *sql.DB, log *slog.Logger) {
	rows, err := db.QueryContext(ctx, `SELECT l.address, m.kept_address, m.merged_address, m.merged_role
		FROM member_case_merges m JOIN lists l ON l.id = m.list_id ORDER BY l.address, m.kept_address`)
	if err != nil {
		log.Warn("cannot read the merged subscriptions", "event", "migrated", "err", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var list, kept, merged, role string
		if rows.Scan(&list, &kept, &merged, &role) == nil {
			log.Info("merged two subscriptions whose addresses differ only in case", "event", "member_merged",
				"list", list, "kept", kept, "merged", merged, "merged_role", role)
		}
	}
}
