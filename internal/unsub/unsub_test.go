package unsub

import (
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	t.Parallel()
	s := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	tok := s.Token(42, "Bob@example.org")
	id, addr, err := s.Check(tok)
	if err != nil || id != 42 || addr != "Bob@example.org" {
		t.Fatalf("Check(Token()) = %d, %q, %v", id, addr, err)
	}
	other := NewSigner([]byte("another key, another server......"))
	bad := []string{"", "x", tok + "x", strings.Replace(tok, ".", ".A", 1), other.Token(42, "Bob@example.org"), "." + strings.Split(tok, ".")[1]}
	for _, b := range bad {
		if _, _, err := s.Check(b); err == nil {
			t.Errorf("Check(%q) accepted", b)
		}
	}
}

// FuzzCheck is the unsubscribe token parser's fuzz target: it never
// panics, and it accepts nothing it did not sign.
func FuzzCheck(f *testing.F) {
	s := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	f.Add(s.Token(1, "a@b.c"))
	f.Add("AAAA.BBBB")
	f.Fuzz(func(t *testing.T, tok string) {
		id, addr, err := s.Check(tok)
		if err != nil {
			return
		}
		if s.Token(id, addr) != tok {
			t.Fatalf("accepted %q, which is not the token for %d %q", tok, id, addr)
		}
	})
}
