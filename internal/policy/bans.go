package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
)

// Bans are address patterns that may not post, per list or server-wide
// (the bans table, which this package owns). A ban is a posting rule like
// the others; only its patterns live in the database, so that every parley
// process applies the same ones.

// ParseBanPattern validates and normalises a ban pattern.
func ParseBanPattern(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 320 || strings.ContainsAny(s, " \t\r\n\x00") {
		return "", false
	}
	return s, true
}

// Glob reports whether s matches pattern, where '*' matches any run of
// characters (including none) and '?' exactly one; everything else matches
// itself. It runs in O(len(pattern)·len(s)) without recursion, so a
// hostile pattern such as "*a*a*a*b" cannot blow up.
func Glob(pattern, s string) bool {
	p, n := []rune(pattern), []rune(s)
	pi, ni := 0, 0
	star, mark := -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && p[pi] == '*': // before the literal case: '*' is a wildcard even facing a '*'
			star, mark = pi, ni
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Ban adds pattern to list listID's bans (0: every list's) and reports
// whether it was new.
func Ban(ctx context.Context, q db.Querier, listID int64, pattern string) (bool, error) {
	res, err := q.ExecContext(ctx, `INSERT INTO bans (list_id, pattern) VALUES (nullif($1, 0), $2) ON CONFLICT DO NOTHING`,
		listID, pattern)
	if err != nil {
		return false, fmt.Errorf("ban: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Unban lifts a ban of list listID (0: a server-wide one) and reports
// whether there was one.
func Unban(ctx context.Context, q db.Querier, listID int64, pattern string) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM bans WHERE coalesce(list_id, 0) = $1 AND pattern = $2`, listID, pattern)
	if err != nil {
		return false, fmt.Errorf("unban: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// BanEntry is one ban.
type BanEntry struct {
	ListID  int64  `db:"list_id"` // 0: every list
	Pattern string `db:"pattern"`
}

// Bans returns the bans that apply to list listID (its own and the
// server-wide ones), or every ban when listID is 0.
func Bans(ctx context.Context, q db.Querier, listID int64) ([]BanEntry, error) {
	var bs []BanEntry
	err := q.SelectContext(ctx, &bs, `SELECT coalesce(list_id, 0) AS list_id, pattern FROM bans
		WHERE $1 = 0 OR list_id = $1 OR list_id IS NULL ORDER BY list_id NULLS FIRST, pattern`, listID)
	return bs, err
}

// Banned reports whether address (compared in lower case) matches one of
// the bans that apply to list listID.
func Banned(ctx context.Context, q db.Querier, listID int64, address string) (bool, error) {
	var patterns pq.StringArray
	err := q.GetContext(ctx, &patterns, `SELECT coalesce(array_agg(pattern), '{}') FROM bans
		WHERE list_id = $1 OR list_id IS NULL`, listID)
	if err != nil {
		return false, fmt.Errorf("bans: %w", err)
	}
	address = strings.ToLower(address)
	for _, p := range patterns {
		if Glob(p, address) {
			return true, nil
		}
	}
	return false, nil
}
