package ingest

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/publicsuffix"
)

// AuthorCheck tells whether a message's From: is authenticated: a DKIM
// signature that verifies and is aligned with the From: domain (relaxed,
// by organisational domain, as DMARC aligns), or an
// Authentication-Results field from a front MTA the configuration trusts
// saying so (dkim=pass aligned, or dmarc=pass). The moderation notice to
// a held post's author depends on it: telling a forged author "your post
// awaits approval" is backscatter.
type AuthorCheck struct {
	// LookupTXT answers DKIM key queries; nil: signatures are not
	// verified here (only a trusted front MTA's word counts).
	LookupTXT func(ctx context.Context, name string) ([]string, error)
	// TrustedAuthServ are the authserv-ids of the front MTAs whose
	// Authentication-Results are believed. Such an MTA must remove the
	// fields with its id that arrive from outside (RFC 8601 section 5).
	TrustedAuthServ []string
	Timeout         time.Duration // for the whole DKIM verification; default 5s
}

// Authenticated reports whether raw's author, at fromDomain, is
// authenticated. Any failure (DNS, a malformed field) is "no".
func (a *AuthorCheck) Authenticated(ctx context.Context, raw []byte, fromDomain string) bool {
	if a == nil || fromDomain == "" {
		return false
	}
	if a.trustedResults(raw, fromDomain) {
		return true
	}
	if a.LookupTXT == nil {
		return false
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return a.LookupTXT(ctx, name) },
		MaxVerifications: 5,
	})
	if err != nil {
		return false
	}
	for _, v := range vs {
		if v.Err == nil && aligned(v.Domain, fromDomain) {
			return true
		}
	}
	return false
}

// trustedResults reads the Authentication-Results fields of the trusted
// front MTAs.
func (a *AuthorCheck) trustedResults(raw []byte, fromDomain string) bool {
	if len(a.TrustedAuthServ) == 0 {
		return false
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return false
	}
	for _, v := range h.Values("Authentication-Results") {
		id, results, err := authres.Parse(v)
		if err != nil || !a.trusts(id) {
			continue
		}
		for _, r := range results {
			switch r := r.(type) {
			case *authres.DKIMResult:
				if r.Value == authres.ResultPass && aligned(r.Domain, fromDomain) {
					return true
				}
			case *authres.DMARCResult:
				if r.Value == authres.ResultPass && aligned(r.From, fromDomain) {
					return true
				}
			}
		}
	}
	return false
}

func (a *AuthorCheck) trusts(id string) bool {
	for _, t := range a.TrustedAuthServ {
		if strings.EqualFold(strings.TrimSpace(id), t) {
			return true
		}
	}
	return false
}

// aligned reports relaxed alignment: the same organisational domain.
func aligned(signer, from string) bool {
	signer, from = strings.ToLower(strings.TrimSuffix(signer, ".")), strings.ToLower(strings.TrimSuffix(from, "."))
	if signer == "" || from == "" {
		return false
	}
	if signer == from {
		return true
	}
	so, err1 := publicsuffix.EffectiveTLDPlusOne(signer)
	fo, err2 := publicsuffix.EffectiveTLDPlusOne(from)
	return err1 == nil && err2 == nil && so == fo
}
