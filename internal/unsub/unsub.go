// Package unsub owns one-click unsubscription (RFC 8058): the signed
// per-member, per-list token in a copy's List-Unsubscribe URL, and the
// HTTP handler that honours it.
//
// The token carries the list and the member's address and an HMAC over
// both with a server secret kept in PostgreSQL, so any parley process can
// check it without a lookup and nobody can make one for another address.
// Only POST unsubscribes; GET shows a page with a button, because link
// scanners and previewers follow GETs.
package unsub

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/parley-list/parley/internal/db"
)

// Signer makes and checks tokens.
type Signer struct {
	key []byte
}

// LoadSigner reads the server's unsubscribe key, making it on first use.
func LoadSigner(ctx context.Context, q db.Querier) (*Signer, error) {
	key, err := Secret(ctx, q, "unsubscribe")
	if err != nil {
		return nil, err
	}
	return &Signer{key: key}, nil
}

// Secret returns the server's secret key called name (32 random bytes),
// made on first use. Every parley process of a site reads the same one,
// so what one signs another checks. This package owns the secrets table;
// the web archive keeps its session key there too ("web").
func Secret(ctx context.Context, q db.Querier, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, err
	}
	var key []byte
	err := q.GetContext(ctx, &key, `SELECT value FROM secrets WHERE name = $1`, name)
	return key, err
}

const macLen = 16

func (s *Signer) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("parley-unsubscribe\x00"))
	m.Write(payload)
	return m.Sum(nil)[:macLen]
}

// Token returns the token for member address (normalised) of list listID.
func (s *Signer) Token(listID int64, address string) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(listID))
	payload = append(payload, address...)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

// ErrBadToken says a token is malformed or its signature is wrong.
var ErrBadToken = errors.New("invalid unsubscribe link")

// Check returns the list and address a valid token stands for.
func (s *Signer) Check(token string) (int64, string, error) {
	p, m, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return 0, "", ErrBadToken
	}
	payload, err1 := base64.RawURLEncoding.Strict().DecodeString(p)
	mac, err2 := base64.RawURLEncoding.Strict().DecodeString(m)
	if err1 != nil || err2 != nil || len(payload) <= 8 || !hmac.Equal(mac, s.mac(payload)) {
		return 0, "", ErrBadToken
	}
	return int64(binary.BigEndian.Uint64(payload[:8])), string(payload[8:]), nil
}
