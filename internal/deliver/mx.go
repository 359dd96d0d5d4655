package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resolver looks up MX records; *net.Resolver is one. Tests inject a fake.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// MXRelay delivers directly to each recipient domain's mail exchangers:
// MX records in preference order, the domain itself when it has none
// (implicit MX), nothing for a Null MX (RFC 7505). STARTTLS is used when
// offered, with the exchanger's name, opportunistically (RFC 7435): an
// unverifiable certificate still gets an encrypted session rather than
// plain text. Connections to each exchanger are reused.
type MXRelay struct {
	Resolver Resolver
	Hostname string // our EHLO name
	Port     int    // 25; tests use another
	Timeout  time.Duration

	mu    sync.Mutex
	hosts map[string]*SMTPRelay
}

// PerDomainLimit: direct delivery caps connections per domain.
func (r *MXRelay) PerDomainLimit() bool { return true }

// exchangers returns the hosts to try for domain.
func (r *MXRelay) exchangers(ctx context.Context, domain string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	mxs, err := r.Resolver.LookupMX(ctx, domain)
	var dnsErr *net.DNSError
	if err != nil && (!errors.As(err, &dnsErr) || !dnsErr.IsNotFound) {
		return nil, err // a temporary DNS failure: retry later
	}
	if len(mxs) == 0 {
		return []string{domain}, nil // implicit MX (RFC 5321 §5.1)
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, &Permanent{Code: 556, Msg: "5.1.10 " + domain + " does not accept mail (null MX)"}
	}
	hosts := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		hosts = append(hosts, strings.TrimSuffix(mx.Host, "."))
	}
	return hosts, nil
}

func (r *MXRelay) relayFor(host string) *SMTPRelay {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hosts == nil {
		r.hosts = map[string]*SMTPRelay{}
	}
	rl, ok := r.hosts[host]
	if !ok {
		rl = &SMTPRelay{Addr: net.JoinHostPort(host, strconv.Itoa(r.Port)), Hostname: r.Hostname, Timeout: r.Timeout,
			// Opportunistic: encrypt whatever the certificate says.
			TLS: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}} //nolint:gosec
		r.hosts[host] = rl
	}
	return rl
}

// Send tries the domain's exchangers in order. A permanent refusal ends
// the attempt; a temporary one or a connection failure moves on to the
// next exchanger.
func (r *MXRelay) Send(ctx context.Context, from, rcpt string, msg []byte) error {
	at := strings.LastIndexByte(rcpt, '@')
	if at < 0 {
		return &Permanent{Code: 553, Msg: "5.1.3 bad recipient address"}
	}
	hosts, err := r.exchangers(ctx, strings.ToLower(rcpt[at+1:]))
	if err != nil {
		return err
	}
	var last error
	for _, h := range hosts {
		err := r.relayFor(h).Send(ctx, from, rcpt, msg)
		var perm *Permanent
		if err == nil || errors.As(err, &perm) {
			return err
		}
		last = err
	}
	return last
}

// Close closes every exchanger's idle connections.
func (r *MXRelay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rl := range r.hosts {
		rl.Close()
	}
	return nil
}
