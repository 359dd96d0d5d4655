package unsub

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	t.Parallel()
	s := &Signer{key: []byte("0123456789abcdef0123456789abcdef")}
	tok := s.Token(42, "Bob@example.org")
	id, addr, err := s.Check(tok)
	if err != nil || id != 42 || addr != "Bob@example.org" {
		t.Fatalf("Check(Token()) = %d, %q, %v", id, addr, err)
	}
	other := &Signer{key: []byte("another key, another server......")}
	bad := []string{"", "x", tok + "x", strings.Replace(tok, ".", ".A", 1), other.Token(42, "Bob@example.org"), "." + strings.Split(tok, ".")[1]}
	for _, b := range bad {
		if _, _, err := s.Check(b); err == nil {
			t.Errorf("Check(%q) accepted", b)
		}
	}
}

// TestBadLinkLogged: a link this server did not sign unsubscribes nobody
// and is logged once, without the token.
func TestBadLinkLogged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.Handle("/unsubscribe/{token}", &Handler{Signer: &Signer{key: []byte("0123456789abcdef0123456789abcdef")},
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	tok := (&Signer{key: []byte("another key, another server......")}).Token(42, "bob@example.org")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/unsubscribe/"+tok, nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status %d, want 404", rec.Code)
	}
	got := logs.String()
	if strings.Count(got, "event=") != 1 || !strings.Contains(got, `event=unsubscribe_refused reason="bad link"`) {
		t.Errorf("logged %q, want one unsubscribe_refused line", got)
	}
	if _, mac, _ := strings.Cut(tok, "."); strings.Contains(got, mac) {
		t.Errorf("logged %q, which holds the token", got)
	}
}

// FuzzCheck is the unsubscribe token parser's fuzz target: it never
// panics, and it accepts nothing it did not sign.
func FuzzCheck(f *testing.F) {
	s := &Signer{key: []byte("0123456789abcdef0123456789abcdef")}
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
