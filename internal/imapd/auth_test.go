package imapd_test

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/parley-list/parley/internal/imapd"
	"github.com/parley-list/parley/internal/testutil/logbuf"
	"github.com/parley-list/parley/internal/testutil/tlstest"
)

// TestAuthenticate: SASL ANONYMOUS (RFC 4505) reads the public lists,
// SASL PLAIN is the member login, anything else is refused.
func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		client sasl.Client
		want   string // mailboxes seen, or "refused"
	}{
		{"anonymous", sasl.NewAnonymousClient("reader@example.net"), "[INBOX dev@lists.example.org]"},
		{"anonymous without trace", sasl.NewAnonymousClient(""), "[INBOX dev@lists.example.org]"},
		{"plain member", sasl.NewPlainClient("", "carol@example.com", "sesame"), "[INBOX dev@lists.example.org secret@lists.example.org]"},
		{"member, address in other case", sasl.NewPlainClient("", "Carol@Example.COM", "sesame"), "[INBOX dev@lists.example.org secret@lists.example.org]"},
		{"plain wrong password", sasl.NewPlainClient("", "carol@example.com", "nope"), "refused"},
		{"plain as someone else", sasl.NewPlainClient("dave@example.com", "carol@example.com", "sesame"), "refused"},
		{"unknown mechanism", sasl.NewExternalClient(""), "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, f, nil)
			if err := c.Authenticate(tt.client); err != nil {
				if tt.want != "refused" {
					t.Fatalf("AUTHENTICATE: %v", err)
				}
				return
			}
			if got := fmt.Sprint(mailboxes(t, c)); got != tt.want {
				t.Errorf("sees %s, want %s", got, tt.want)
			}
		})
	}
	out := session(t, f.addr, "a CAPABILITY\r\nz LOGOUT\r\n")
	for _, want := range []string{"AUTH=PLAIN", "AUTH=ANONYMOUS"} {
		if !strings.Contains(out, want) {
			t.Errorf("CAPABILITY lacks %s:\n%s", want, out)
		}
	}
}

// TestTLS: with a certificate, STARTTLS is offered on the plain port and
// the implicit-TLS port speaks IMAP; both carry a member's login.
func TestTLS(t *testing.T) {
	f := newFixture(t, func(o *imapd.Options, _ *fixture) { o.TLS = tlstest.SelfSigned(t) })
	client := &tls.Config{InsecureSkipVerify: true, ServerName: tlstest.ServerName}

	out := session(t, f.addr, "a CAPABILITY\r\nz LOGOUT\r\n")
	if !strings.Contains(out, "STARTTLS") {
		t.Errorf("CAPABILITY on the plain port lacks STARTTLS:\n%s", out)
	}
	c, err := imapclient.DialStartTLS(f.addr, &imapclient.Options{TLSConfig: client})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if err := c.Login("carol@example.com", "sesame").Wait(); err != nil {
		t.Errorf("member login after STARTTLS: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.ServeTLS(ln)
	tc, err := imapclient.DialTLS(ln.Addr().String(), &imapclient.Options{TLSConfig: client})
	if err != nil {
		t.Fatalf("implicit TLS: %v", err)
	}
	defer tc.Close()
	if err := tc.Login("carol@example.com", "sesame").Wait(); err != nil {
		t.Fatalf("member login over implicit TLS: %v", err)
	}
	if got, want := fmt.Sprint(mailboxes(t, tc)), "[INBOX dev@lists.example.org secret@lists.example.org]"; got != want {
		t.Errorf("over implicit TLS sees %s, want %s", got, want)
	}
	// The last response and TLS's close_notify go out before the close.
	if err := tc.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT over implicit TLS: %v, want its OK", err)
	}
}

// TestLoginLogged: every login, and every failed one, is logged once with
// the client's address; a password never is.
func TestLoginLogged(t *testing.T) {
	var logs logbuf.Buffer
	f := newFixture(t, func(o *imapd.Options, _ *fixture) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
	for _, login := range []string{"anonymous x", "carol@example.com sesame", "carol@example.com open-sesame"} {
		session(t, f.addr, "a LOGIN "+login+"\r\nz LOGOUT\r\n")
	}
	got := logs.String()
	for _, want := range []string{
		"event=imap_login mode=anonymous remote=127.0.0.1\n",
		"event=imap_login mode=member remote=127.0.0.1 user=carol@example.com\n",
		`event=imap_auth_failed remote=127.0.0.1 reason="wrong password or no archive password"`,
	} {
		if strings.Count(got, want) != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", want, strings.Count(got, want), got)
		}
	}
	if strings.Contains(got, "sesame") {
		t.Errorf("a password is in the log:\n%s", got)
	}
}
