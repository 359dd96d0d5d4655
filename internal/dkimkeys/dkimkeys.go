// Package dkimkeys owns the DKIM keys of the list domains: making them,
// storing them in PostgreSQL, printing the DNS record to publish, and
// signing outgoing copies with go-msgauth.
package dkimkeys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
)

// Key is one signing key.
type Key struct {
	Domain    string `db:"domain" json:"domain"`
	Selector  string `db:"selector" json:"selector"`
	Algorithm string `db:"algorithm" json:"algorithm"`
	PEM       string `db:"private_key" json:"-"`
}

var selectorRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Generate makes a key: RSA-2048 ("rsa") or Ed25519 ("ed25519").
func Generate(domain, selector, algorithm string) (Key, error) {
	if !selectorRE.MatchString(selector) {
		return Key{}, errs.Invalidf("selector %q: use a-z, 0-9 and '-'", selector)
	}
	var priv any
	switch algorithm {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return Key{}, err
		}
		priv = k
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return Key{}, err
		}
		priv = k
	default:
		return Key{}, errs.Invalidf("key type %q: want rsa or ed25519", algorithm)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, err
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return Key{Domain: domain, Selector: selector, Algorithm: algorithm, PEM: string(p)}, nil
}

// Signer returns the key as a crypto.Signer.
func (k Key) Signer() (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(k.PEM))
	if b == nil {
		return nil, fmt.Errorf("dkim key %s/%s: not PEM", k.Domain, k.Selector)
	}
	priv, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s/%s: %w", k.Domain, k.Selector, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dkim key %s/%s: cannot sign", k.Domain, k.Selector)
	}
	return s, nil
}

// TXT returns the DNS record to publish: its name and its value.
func (k Key) TXT() (name, value string, err error) {
	s, err := k.Signer()
	if err != nil {
		return "", "", err
	}
	var pub []byte
	kt := "rsa"
	switch p := s.Public().(type) {
	case *rsa.PublicKey:
		pub, err = x509.MarshalPKIXPublicKey(p)
	case ed25519.PublicKey:
		kt, pub = "ed25519", []byte(p)
	}
	if err != nil {
		return "", "", err
	}
	return k.Selector + "._domainkey." + k.Domain, "v=DKIM1; k=" + kt + "; p=" + base64.StdEncoding.EncodeToString(pub), nil
}

// Save stores a key; a key with the same domain and selector is an error.
func Save(ctx context.Context, q db.Querier, k Key) error {
	_, err := q.ExecContext(ctx, `INSERT INTO dkim_keys (domain, selector, algorithm, private_key) VALUES ($1, $2, $3, $4)`,
		k.Domain, k.Selector, k.Algorithm, k.PEM)
	if _, dup := db.IsUniqueViolation(err); dup {
		return errs.Invalidf("%s already has a key with selector %s", k.Domain, k.Selector)
	}
	return err
}

// ForDomain returns a domain's keys.
func ForDomain(ctx context.Context, q db.Querier, domain string) ([]Key, error) {
	var ks []Key
	err := q.SelectContext(ctx, &ks, `SELECT domain, selector, algorithm, private_key FROM dkim_keys WHERE domain = $1 ORDER BY id`, strings.ToLower(domain))
	return ks, err
}

// All returns every key (without caring for the private part).
func All(ctx context.Context, q db.Querier) ([]Key, error) {
	var ks []Key
	err := q.SelectContext(ctx, &ks, `SELECT domain, selector, algorithm, private_key FROM dkim_keys ORDER BY domain, selector`)
	return ks, err
}

// SignedHeaders are the fields each signature covers. From is listed twice
// (over-signed) so that no From field can be added after signing; fields
// absent from a copy are signed as absent, so they cannot be added either.
var SignedHeaders = []string{"From", "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"List-Id", "List-Post", "List-Help", "List-Subscribe", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Archive", "List-Owner", "Archived-At"}

// Signing is a domain's keys, parsed once to sign many messages: a list
// that gives each copy its own unsubscribe link signs every copy, and
// parsing an RSA key (with its precomputation) each time cost a fifth as
// much as the signature itself.
type Signing []signingKey

type signingKey struct {
	k Key
	s crypto.Signer
}

// Prepare parses keys for signing.
func Prepare(keys []Key) (Signing, error) {
	g := make(Signing, 0, len(keys))
	for _, k := range keys {
		s, err := k.Signer()
		if err != nil {
			return nil, err
		}
		g = append(g, signingKey{k: k, s: s})
	}
	return g, nil
}

// Sign returns msg with one DKIM-Signature per key (relaxed/relaxed),
// newest signature first.
func (g Signing) Sign(msg []byte) ([]byte, error) {
	out := msg
	for _, sk := range g {
		var b bytes.Buffer
		err := dkim.Sign(&b, bytes.NewReader(out), &dkim.SignOptions{
			Domain: sk.k.Domain, Selector: sk.k.Selector, Signer: sk.s,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
			HeaderKeys: SignedHeaders,
		})
		if err != nil {
			return nil, fmt.Errorf("dkim sign %s/%s: %w", sk.k.Domain, sk.k.Selector, err)
		}
		out = b.Bytes()
	}
	return out, nil
}
