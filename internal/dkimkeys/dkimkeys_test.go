package dkimkeys

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// lookup answers DKIM DNS queries from the given keys.
func lookup(keys ...Key) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		for _, k := range keys {
			if n, v, _ := k.TXT(); n == name {
				return []string{v}, nil
			}
		}
		return nil, fmt.Errorf("no TXT for %s", name)
	}
}

// TestSignVerify signs with an RSA and an Ed25519 key and verifies both
// signatures; a changed From then fails verification.
func TestSignVerify(t *testing.T) {
	t.Parallel()
	rsaKey, err := Generate("lists.example.org", "r1", "rsa")
	if err != nil {
		t.Fatal(err)
	}
	edKey, err := Generate("lists.example.org", "e1", "ed25519")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("From: alice@example.org\r\nTo: dev@lists.example.org\r\nSubject: hi\r\nList-Id: <dev.lists.example.org>\r\n\r\nbody\r\n")
	g, err := Prepare([]Key{rsaKey, edKey})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := g.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := g.Sign(msg); err != nil || bytes.Count(again, []byte("DKIM-Signature:")) != 2 {
		t.Errorf("signing a second message with the same prepared keys: %v", err) // the parsed keys are reused
	}
	if n := bytes.Count(signed, []byte("DKIM-Signature:")); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: lookup(rsaKey, edKey)})
	if err != nil || len(vs) != 2 {
		t.Fatalf("Verify() = %d, %v", len(vs), err)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "lists.example.org" {
			t.Errorf("signature %s: %v", v.Domain, v.Err)
		}
	}
	forged := bytes.Replace(signed, []byte("From: alice@"), []byte("From: mallory@"), 1)
	vs, _ = dkim.VerifyWithOptions(bytes.NewReader(forged), &dkim.VerifyOptions{LookupTXT: lookup(rsaKey, edKey)})
	for _, v := range vs {
		if v.Err == nil {
			t.Error("a signature still verifies after From changed")
		}
	}
	if _, err := Generate("d", "Bad Selector", "rsa"); err == nil {
		t.Error("a bad selector was accepted")
	}
	if name, value, _ := rsaKey.TXT(); name != "r1._domainkey.lists.example.org" || !strings.HasPrefix(value, "v=DKIM1; k=rsa; p=") {
		t.Errorf("TXT() = %q %q", name, value)
	}
}
