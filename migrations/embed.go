// Package migrations holds parley's schema, embedded in the binary and
// applied by internal/db:
//
//   - numbered goose files (NNNNN_name.sql, "-- +goose Up" only): tables,
//     indexes, and the functions an index depends on. 00001_baseline.sql
//     is the whole schema as first released; each later change is a new
//     file after it. Never edit a file that has been released.
//   - functions/NAME.sql: one PL/pgSQL or SQL function each, named after
//     its file, created after goose and replaced whenever the file changes,
//     so a change to a function is a diff of that function.
//   - prerelease/from-18.sql: the conversion of a pre-release database
//     (the squashed chain's last version) to the baseline.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql functions/*.sql prerelease/*.sql
var FS embed.FS
