package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/parley-list/parley/internal/testutil/tlstest"
)

// TestTLSPolicy: every TLS endpoint of the real binary (SMTP STARTTLS,
// IMAP STARTTLS, implicit-TLS IMAP) speaks TLS 1.3 and TLS 1.2 with
// forward-secret AEAD suites, and refuses TLS 1.1 and CBC/SHA-1 suites.
func TestTLSPolicy(t *testing.T) {
	t.Parallel()
	cert, key := tlstest.Files(t, t.TempDir())
	env := baseEnv(dataDir(t), "PARLEY_SMTP_TLS_CERT="+cert, "PARLEY_SMTP_TLS_KEY="+key,
		"PARLEY_IMAP_TLS_CERT="+cert, "PARLEY_IMAP_TLS_KEY="+key, "PARLEY_IMAPS_LISTEN=127.0.0.1:0")
	s := startServer(t, env)
	base := tls.Config{InsecureSkipVerify: true, ServerName: tlstest.ServerName}
	clients := []struct {
		name    string
		min     uint16
		max     uint16
		suites  []uint16
		wantErr bool
	}{
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, nil, false},
		{"TLS 1.2 AES-GCM", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, false},
		{"TLS 1.2 ChaCha20", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, false},
		{"TLS 1.2 CBC-SHA1", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, true},
		{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, nil, true},
	}
	endpoints := map[string]func(*tls.Config) (uint16, error){
		"smtp starttls": func(c *tls.Config) (uint16, error) { return smtpStartTLS(s.ready["smtp"], c) },
		"imap starttls": func(c *tls.Config) (uint16, error) { return imapStartTLS(s.ready["imap"], c) },
		"imaps": func(c *tls.Config) (uint16, error) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.ready["imaps"], c)
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			return conn.ConnectionState().Version, nil
		},
	}
	for name, dial := range endpoints {
		for _, c := range clients {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				conf := base.Clone()
				conf.MinVersion, conf.MaxVersion, conf.CipherSuites = c.min, c.max, c.suites
				version, err := dial(conf)
				if c.wantErr && err == nil {
					t.Fatalf("handshake succeeded (version %x), want it refused", version)
				}
				if !c.wantErr && (err != nil || version != c.max) {
					t.Fatalf("got version %x, err %v; want version %x", version, err, c.max)
				}
			})
		}
	}
}

func smtpStartTLS(addr string, conf *tls.Config) (uint16, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := smtp.NewClientStartTLS(conn, conf)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Noop(); err != nil { // the handshake happens on first use
		return 0, err
	}
	st, _ := c.TLSConnectionState()
	return st.Version, nil
}

func imapStartTLS(addr string, conf *tls.Config) (uint16, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		return 0, err
	}
	fmt.Fprintf(conn, "a STARTTLS\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if strings.HasPrefix(line, "a OK") {
			break
		}
		if strings.HasPrefix(line, "a ") {
			return 0, fmt.Errorf("STARTTLS: %s", line)
		}
	}
	tc := tls.Client(conn, conf)
	if err := tc.Handshake(); err != nil {
		return 0, err
	}
	return tc.ConnectionState().Version, nil
}
