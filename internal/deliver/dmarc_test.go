package deliver

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
)

func TestDMARCStrict(t *testing.T) {
	t.Parallel()
	var lookups atomic.Int32
	records := map[string][]string{
		"_dmarc.strict.example":  {"v=DMARC1; p=reject"},
		"_dmarc.quar.example":    {"v=DMARC1; p=quarantine; pct=50"},
		"_dmarc.relaxed.example": {"v=DMARC1; p=none"},
		"_dmarc.example.co.uk":   {"v=DMARC1; p=none; sp=reject"},
	}
	d := &DMARC{LookupTXT: func(_ context.Context, name string) ([]string, error) {
		lookups.Add(1)
		if name == "_dmarc.broken.example" {
			return nil, errors.New("SERVFAIL")
		}
		if r, ok := records[name]; ok {
			return r, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}}
	tests := []struct {
		domain string
		want   bool
	}{
		{"strict.example", true},
		{"quar.example", true},
		{"relaxed.example", false},
		{"mail.example.co.uk", true}, // the organisational domain's sp=
		{"nothing.example", false},
		{"broken.example", false}, // a DNS failure never blocks delivery
	}
	for _, tc := range tests {
		if got := d.Strict(context.Background(), tc.domain); got != tc.want {
			t.Errorf("Strict(%q) = %v, want %v", tc.domain, got, tc.want)
		}
	}
	before := lookups.Load()
	d.Strict(context.Background(), "strict.example")
	if lookups.Load() != before {
		t.Error("a cached answer was looked up again")
	}
}
