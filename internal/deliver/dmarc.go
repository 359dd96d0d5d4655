package deliver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// DMARC tells whether an author's domain asks receivers to quarantine or
// reject mail that fails DMARC, which a list's copy of their post does
// (the list changes the message and sends it from its own servers). The
// answer is cached, and every lookup has a deadline: a DNS failure means
// "no policy", so it never blocks delivery.
type DMARC struct {
	LookupTXT func(ctx context.Context, name string) ([]string, error)
	TTL       time.Duration

	mu    sync.Mutex
	cache map[string]dmarcEntry
}

type dmarcEntry struct {
	strict  bool
	expires time.Time
}

// Strict reports whether domain (or, lacking a record, its organisational
// domain) publishes p=quarantine or p=reject.
func (d *DMARC) Strict(ctx context.Context, domain string) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	d.mu.Lock()
	if e, ok := d.cache[domain]; ok && time.Now().Before(e.expires) {
		d.mu.Unlock()
		return e.strict
	}
	d.mu.Unlock()
	strict := d.lookup(ctx, domain)
	d.mu.Lock()
	if d.cache == nil || len(d.cache) > 100000 {
		d.cache = map[string]dmarcEntry{}
	}
	ttl := d.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	d.cache[domain] = dmarcEntry{strict: strict, expires: time.Now().Add(ttl)}
	d.mu.Unlock()
	return strict
}

func (d *DMARC) lookup(ctx context.Context, domain string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return d.LookupTXT(ctx, name) }}
	rec, err := dmarc.LookupWithOptions(domain, opts)
	if errors.Is(err, dmarc.ErrNoPolicy) {
		if org, oerr := publicsuffix.EffectiveTLDPlusOne(domain); oerr == nil && org != domain {
			if rec, err = dmarc.LookupWithOptions(org, opts); err == nil && rec.SubdomainPolicy != "" {
				return strictPolicy(rec.SubdomainPolicy)
			}
		}
	}
	if err != nil || rec == nil {
		return false
	}
	return strictPolicy(rec.Policy)
}

func strictPolicy(p dmarc.Policy) bool {
	return p == dmarc.PolicyQuarantine || p == dmarc.PolicyReject
}
