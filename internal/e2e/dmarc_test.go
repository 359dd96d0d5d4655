package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/parley-list/parley/internal/testutil/dnstest"
	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestDMARCMitigation: through the real binary and a DNS server on
// loopback (dns.resolver), a list on the default "policy" mitigation
// rewrites From: for an author whose domain publishes p=reject, keeping
// the author in Reply-To: (as Mailman's munge_from does); an author with
// p=none keeps their From:; a lookup that times out keeps the From: and is
// logged. Every copy's DKIM signature verifies.
func TestDMARCMitigation(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	dns.TXT("_dmarc.reject.example", "v=DMARC1; p=reject; rua=mailto:d@reject.example")
	dns.TXT("_dmarc.none.example", "v=DMARC1; p=none")
	dns.Drop("_dmarc.slow.example")
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr,
		"PARLEY_DNS_RESOLVER="+dns.Addr)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open", "--name", "Dev")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "reader@one.example")
	txtName, txtValue := parseTXT(t, mustRun(t, env, "dkim", "keygen", "lists.example.org", "--selector", "s1"))
	for _, p := range []struct{ from, subject string }{
		{"Alice Strict <alice@reject.example>", "strict author"},
		{"Bob Relaxed <bob@none.example>", "relaxed author"},
		{"Carol Slow <carol@slow.example>", "slow dns"},
	} {
		addr := p.from[strings.Index(p.from, "<")+1 : len(p.from)-1]
		if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", addr,
			"--header", "From: "+p.from, "--header", "Subject: "+p.subject); code != 0 {
			t.Fatalf("post from %s refused:\n%s", addr, out)
		}
	}
	copies := map[string]string{} // subject → copy
	deadline := time.Now().Add(60 * time.Second)
	for len(copies) < 3 && time.Now().Before(deadline) {
		for _, m := range sink.Messages() {
			for _, subj := range []string{"strict author", "relaxed author", "slow dns"} {
				if strings.Contains(string(m.Data), "Subject: "+subj+"\r\n") {
					copies[subj] = string(m.Data)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(copies) != 3 {
		t.Fatalf("%d of 3 copies arrived", len(copies))
	}
	tests := []struct {
		subject, from, replyTo string
	}{
		{"strict author", `From: "Alice Strict via Dev" <dev@lists.example.org>`, "Reply-To: Alice Strict <alice@reject.example>"},
		{"relaxed author", "From: Bob Relaxed <bob@none.example>", ""},
		{"slow dns", "From: Carol Slow <carol@slow.example>", ""},
	}
	for _, tc := range tests {
		c := copies[tc.subject]
		if !strings.Contains(c, tc.from+"\r\n") {
			t.Errorf("%s: copy has no %q:\n%s", tc.subject, tc.from, c)
		}
		if tc.replyTo != "" && !strings.Contains(c, tc.replyTo+"\r\n") {
			t.Errorf("%s: copy has no %q:\n%s", tc.subject, tc.replyTo, c)
		}
		if tc.replyTo == "" && strings.Contains(c, "X-Original-From:") {
			t.Errorf("%s: From: rewritten although the policy is not strict:\n%s", tc.subject, c)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader([]byte(c)), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
			if name != txtName {
				return nil, fmt.Errorf("no TXT record %s", name)
			}
			return []string{txtValue}, nil
		}})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Errorf("%s: DKIM verification: %v %+v", tc.subject, err, vs)
		}
	}
	if dns.Asked("_dmarc.reject.example") == 0 {
		t.Error("the author's DMARC policy was not looked up through dns.resolver")
	}
	if log := s.stderr.String(); !strings.Contains(log, "event=dmarc_lookup_failed") || !strings.Contains(log, "domain=slow.example") {
		t.Errorf("the DNS timeout was not logged:\n%s", log)
	}
	s.stop()
}
