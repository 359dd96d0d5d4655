package ingest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// signed returns msg signed by domain's key, and the key's DNS record.
func signed(t *testing.T, domain, msg string) ([]byte, string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: "s1", Signer: priv,
		HeaderKeys: []string{"From", "Subject"}}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

func TestAuthorCheck(t *testing.T) {
	t.Parallel()
	const msg = "From: ann@mail.example.org\r\nSubject: hi\r\n\r\nhello\r\n"
	good, record := signed(t, "example.org", msg)
	other, otherRecord := signed(t, "elsewhere.example", msg)
	dns := map[string]string{"s1._domainkey.example.org": record, "s1._domainkey.elsewhere.example": otherRecord}
	lookup := func(_ context.Context, name string) ([]string, error) {
		if r, ok := dns[name]; ok {
			return []string{r}, nil
		}
		return nil, errors.New("no such name")
	}
	ar := func(field string) []byte { return []byte("Authentication-Results: " + field + "\r\n" + msg) }
	check := &AuthorCheck{LookupTXT: lookup, TrustedAuthServ: []string{"mx.lists.example"}}
	for _, tc := range []struct {
		name string
		raw  []byte
		want bool
	}{
		{"aligned DKIM signature (organisational domain)", good, true},
		{"signature of another domain", other, false},
		{"no signature", []byte(msg), false},
		{"signature broken in transit", bytes.Replace(good, []byte("hello"), []byte("HELLO"), 1), false},
		{"trusted MTA: dkim pass aligned", ar("mx.lists.example; dkim=pass header.d=example.org"), true},
		{"trusted MTA: dmarc pass", ar("mx.lists.example; dmarc=pass header.from=mail.example.org"), true},
		{"trusted MTA: dkim pass, not aligned", ar("mx.lists.example; dkim=pass header.d=elsewhere.example"), false},
		{"trusted MTA: dkim fail", ar("mx.lists.example; dkim=fail header.d=example.org"), false},
		{"untrusted authserv-id", ar("mx.attacker.example; dkim=pass header.d=example.org"), false},
		{"malformed field", ar("mx.lists.example; dkim"), false},
	} {
		if got := check.Authenticated(t.Context(), tc.raw, "mail.example.org"); got != tc.want {
			t.Errorf("%s: Authenticated = %v, want %v", tc.name, got, tc.want)
		}
	}
	var none *AuthorCheck
	if none.Authenticated(t.Context(), good, "mail.example.org") {
		t.Error("a nil check authenticated an author")
	}
}

// FuzzAuthorCheck: any message, any Authentication-Results field, never
// panics, and is never authenticated without a trusted field or a
// signature (this check has no DNS).
func FuzzAuthorCheck(f *testing.F) {
	f.Add([]byte("Authentication-Results: mx.lists.example; dkim=pass header.d=example.org\r\nFrom: a@example.org\r\n\r\nx\r\n"), "example.org")
	f.Add([]byte("Authentication-Results: mx.lists.example; dmarc=pass header.from=example.org; dkim=fail (bad) header.d=x\r\n\r\n"), "example.org")
	f.Add([]byte("Authentication-Results: ; ; ;=\r\n\r\n"), "")
	check := &AuthorCheck{TrustedAuthServ: []string{"mx.lists.example"}}
	f.Fuzz(func(t *testing.T, raw []byte, domain string) {
		got := check.Authenticated(t.Context(), raw, domain)
		if got && !bytes.Contains(bytes.ToLower(raw), []byte("mx.lists.example")) {
			t.Fatalf("authenticated without a trusted field: %q", raw)
		}
	})
}
