// Package migrations holds parley's schema as numbered SQL files, embedded
// in the binary and applied in order by internal/db (goose format: each
// file has a "-- +goose Up" section). Never edit a file that has been
// released; add a new one.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
