package members

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"golang.org/x/crypto/bcrypt"
	"strings"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
)

// FirstOf returns the first of the normalised addresses, in the order
// given, that is a member of the list (intake asks for the From address,
// then the envelope sender); ok is false when none is.
func FirstOf(ctx context.Context, q db.Querier, listID int64, norms []string) (m Member, ok bool, err error) {
	err = q.GetContext(ctx, &m, `SELECT `+cols+` FROM members WHERE list_id = $1 AND address_norm = ANY ($2::text[])
		ORDER BY array_position($2::text[], address_norm) LIMIT 1`, listID, pq.StringArray(norms))
	if db.IsNoRows(err) {
		return Member{}, false, nil
	}
	if err != nil {
		return Member{}, false, fmt.Errorf("member lookup: %w", err)
	}
	return m, true, nil
}

// Owners returns the addresses of a list's active owners and moderators,
// the people notices about the list go to.
func Owners(ctx context.Context, q db.Querier, listID int64) ([]string, error) {
	var rcpts []string
	err := q.SelectContext(ctx, &rcpts, `SELECT address FROM members WHERE list_id = $1 AND role IN ('owner', 'moderator')
		AND status = 'active' ORDER BY address_norm`, listID)
	return rcpts, err
}

// ArchiveLogin is one list whose private archive an address may read, with
// the hash of the password it reads it with.
type ArchiveLogin struct {
	ListID int64  `db:"list_id"`
	Hash   string `db:"archive_password"` // bcrypt
}

// ArchiveLogins returns the lists on which the normalised address has an
// archive password (IMAP logins check the password against each).
func ArchiveLogins(ctx context.Context, q db.Querier, addressNorm string) ([]ArchiveLogin, error) {
	var ls []ArchiveLogin
	err := q.SelectContext(ctx, &ls, `SELECT list_id, archive_password FROM members
		WHERE address_norm = $1 AND archive_password <> ''`, addressNorm)
	return ls, err
}

// Disable stops delivery to an active member for reason (say, "bounces")
// and reports whether it did; a member already disabled is left as is.
func Disable(ctx context.Context, q db.Querier, memberID int64, reason string) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE members SET status = 'disabled', disabled_reason = $2, updated_at = now()
		WHERE id = $1 AND status = 'active'`, memberID, reason)
	if err != nil {
		return false, fmt.Errorf("disable member: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ArchiveAccess returns the lists whose archive the normalised address
// may read with password: those where it is a member with that archive
// password (IMAP and web logins).
func ArchiveAccess(ctx context.Context, q db.Querier, addressNorm, password string) ([]int64, error) {
	rows, err := ArchiveLogins(ctx, q, addressNorm)
	if err != nil {
		return nil, err
	}
	var ok []int64
	for _, r := range rows {
		if bcrypt.CompareHashAndPassword([]byte(r.Hash), []byte(password)) == nil {
			ok = append(ok, r.ListID)
		}
	}
	return ok, nil
}

// NewFeedToken gives a member a new secret feed token (the old one stops
// working) and returns it; revoke leaves none.
func NewFeedToken(ctx context.Context, q db.Querier, memberID int64, revoke bool) (string, error) {
	tok := ""
	if !revoke {
		b := make([]byte, 20)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		tok = strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	}
	_, err := q.ExecContext(ctx, `UPDATE members SET feed_token = $2, updated_at = now() WHERE id = $1`, memberID, tok)
	return tok, err
}

// ByFeedToken returns the list a secret feed token opens (0 when none).
func ByFeedToken(ctx context.Context, q db.Querier, token string) (int64, error) {
	if token == "" {
		return 0, nil
	}
	var listID int64
	err := q.GetContext(ctx, &listID, `SELECT list_id FROM members WHERE feed_token = $1 AND status = 'active'`, token)
	if db.IsNoRows(err) {
		return 0, nil
	}
	return listID, err
}
