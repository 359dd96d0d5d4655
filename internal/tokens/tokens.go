// Package tokens owns confirmation tokens: random codes that prove a
// message reached an address (160 bits, stored only as a SHA-256 hash,
// single-use, expiring, bound to a list, an address and an action).
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/mailaddr"
)

// Token errors, for the reply.
var (
	ErrTokenUnknown = errors.New("unknown token")
	ErrTokenUsed    = errors.New("token already used")
	ErrTokenExpired = errors.New("token expired")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newToken returns 160 random bits as 32 lower-case base32 characters
// (they fit in an address's local part) and the hash that is stored.
func newToken() (string, []byte, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	raw := strings.ToLower(b32.EncodeToString(b))
	return raw, hashToken(raw), nil
}

func hashToken(raw string) []byte {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(raw))))
	return h[:]
}

// Actions a token can confirm.
const (
	Subscribe   = "subscribe"
	Unsubscribe = "unsubscribe"
	Command     = "command"  // an owner's commands, in Payload
	Held        = "held"     // a decision on a held post; Payload is its id
	Settings    = "settings" // a member's own setting changes, in Payload
)

// Token is a pending confirmation.
type Token struct {
	ID          int64      `db:"id"`
	ListID      int64      `db:"list_id"`
	Address     string     `db:"address"`
	AddressNorm string     `db:"address_norm"`
	Action      string     `db:"action"`
	Mode        string     `db:"mode"`
	Payload     string     `db:"payload"`
	ExpiresAt   time.Time  `db:"expires_at"`
	UsedAt      *time.Time `db:"used_at"`
}

// New describes a token to create.
type New struct {
	ListID  int64
	Given   string // the address as written
	Address mailaddr.Address
	Action  string
	Mode    string
	Payload string
	TTL     time.Duration
}

// Create stores a confirmation and returns the raw token, which exists
// only in the mail sent to the address.
func Create(ctx context.Context, q db.Querier, n New) (string, error) {
	raw, hash, err := newToken()
	if err != nil {
		return "", err
	}
	if n.Mode == "" {
		n.Mode = "regular"
	}
	_, err = q.ExecContext(ctx, `INSERT INTO tokens (hash, list_id, address, address_norm, action, mode, payload, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8 * interval '1 second')`,
		hash, n.ListID, n.Given, n.Address.String(), n.Action, n.Mode, n.Payload, n.TTL.Seconds())
	return raw, err
}

// Take checks and uses a token of list listID: a token works once, only
// before it expires, and only for the list it was made for.
func Take(ctx context.Context, q db.Querier, listID int64, raw string) (Token, error) {
	var t Token
	err := q.GetContext(ctx, &t, `SELECT id, list_id, address, address_norm, action, mode, payload, expires_at, used_at
		FROM tokens WHERE hash = $1 AND list_id = $2 FOR UPDATE`, hashToken(raw), listID)
	switch {
	case db.IsNoRows(err):
		return t, errs.Kindf(ErrTokenUnknown, "that confirmation code is not known here")
	case err != nil:
		return t, err
	case t.UsedAt != nil:
		return t, errs.Kindf(ErrTokenUsed, "that confirmation code was already used")
	case time.Now().After(t.ExpiresAt):
		return t, errs.Kindf(ErrTokenExpired, "that confirmation code has expired; please start again")
	}
	_, err = q.ExecContext(ctx, `UPDATE tokens SET used_at = now() WHERE id = $1`, t.ID)
	return t, err
}
