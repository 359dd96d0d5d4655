package db

import (
	"context"
	"database/sql"
)

// ApplyFunctions is applyFunctions, for tests with functions of their own.
var ApplyFunctions = applyFunctions

// MigrateTo applies the numbered migrations up to version only, for tests
// of what a later one does to the data it finds.
func MigrateTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}
