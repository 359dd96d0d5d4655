package mailaddr

import (
	"strings"
	"testing"
)

func TestVERP(t *testing.T) {
	t.Parallel()
	tests := []struct{ list, rcpt, want string }{
		{"dev@lists.example.org", "bob@example.org", "dev-bounces+bob=example.org@lists.example.org"},
		{"dev@lists.example.org", "a=b@example.org", "dev-bounces+a=b=example.org@lists.example.org"},
	}
	for _, tc := range tests {
		got := VERP(tc.list, tc.rcpt)
		if got != tc.want {
			t.Errorf("VERP(%q, %q) = %q, want %q", tc.list, tc.rcpt, got, tc.want)
		}
		detail := strings.TrimSuffix(strings.TrimPrefix(got, "dev-bounces+"), "@lists.example.org")
		if back, ok := DecodeVERP(detail); !ok || back != tc.rcpt {
			t.Errorf("DecodeVERP(%q) = %q, %v; want %q", detail, back, ok, tc.rcpt)
		}
	}
	for _, bad := range []string{"", "noequals", "=x", "x="} {
		if got, ok := DecodeVERP(bad); ok {
			t.Errorf("DecodeVERP(%q) = %q, want failure", bad, got)
		}
	}
}

// FuzzVERP is the VERP decoder's fuzz target: decoding never panics, and
// any address encoded and decoded again comes back unchanged.
func FuzzVERP(f *testing.F) {
	for _, s := range []string{"bob=example.org", "a=b=c.d", "=", "x", "Bob.Smith+tag=Example.ORG"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, detail string) {
		addr, ok := DecodeVERP(detail)
		if !ok {
			return
		}
		if !strings.Contains(addr, "@") {
			t.Fatalf("DecodeVERP(%q) = %q without @", detail, addr)
		}
		v := VERP("dev@lists.example.org", addr)
		d2 := strings.TrimSuffix(strings.TrimPrefix(v, "dev-bounces+"), "@lists.example.org")
		if back, ok := DecodeVERP(d2); !ok || back != addr {
			t.Fatalf("round trip of %q: %q -> %q", addr, v, back)
		}
	})
}
