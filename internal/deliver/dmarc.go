package deliver

import (
	"context"
	"errors"
	"log/slog"
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
// "no policy", so it never blocks delivery; it is logged, and remembered
// for a minute only, so the next post asks again.
type DMARC struct {
	LookupTXT func(ctx context.Context, name string) ([]string, error)
	TTL       time.Duration
	Logger    *slog.Logger // nil: failures are not logged

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
	strict, err := d.lookup(ctx, domain)
	ttl := d.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	if err != nil {
		ttl = min(ttl, failedTTL)
		if d.Logger != nil {
			d.Logger.Warn("DMARC policy lookup failed; the author's From: is kept", "event", "dmarc_lookup_failed",
				"domain", domain, "err", err)
		}
	}
	d.mu.Lock()
	if d.cache == nil || len(d.cache) > 100000 {
		d.cache = map[string]dmarcEntry{}
	}
	d.cache[domain] = dmarcEntry{strict: strict, expires: time.Now().Add(ttl)}
	d.mu.Unlock()
	return strict
}

// failedTTL is how long a failed lookup's "no policy" is remembered.
const failedTTL = time.Minute

// lookup returns whether domain's policy is strict, and the error when
// the answer could not be had (a missing record is not an error).
func (d *DMARC) lookup(ctx context.Context, domain string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return d.LookupTXT(ctx, name) }}
	rec, err := dmarc.LookupWithOptions(domain, opts)
	if errors.Is(err, dmarc.ErrNoPolicy) {
		org, oerr := publicsuffix.EffectiveTLDPlusOne(domain)
		if oerr != nil || org == domain {
			return false, nil
		}
		rec, err = dmarc.LookupWithOptions(org, opts)
		if errors.Is(err, dmarc.ErrNoPolicy) {
			return false, nil
		}
		if err == nil && rec.SubdomainPolicy != "" {
			return strictPolicy(rec.SubdomainPolicy), nil // sp= governs subdomains
		}
	}
	if err != nil {
		return false, err
	}
	return strictPolicy(rec.Policy), nil
}

func strictPolicy(p dmarc.Policy) bool {
	return p == dmarc.PolicyQuarantine || p == dmarc.PolicyReject
}
