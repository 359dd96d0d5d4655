package nntpd

import (
	"strings"
	"testing"
)

// TestPathOf: an article that came by news keeps the path it came by
// behind this server's name; anything else is "not-for-mail".
func TestPathOf(t *testing.T) {
	tests := []struct{ head, want string }{
		{"From: a@example.org\r\n", "not-for-mail"},
		{"path: feed.example!origin.example!not-for-mail\r\nFrom: a@example.org\r\n", "feed.example!origin.example!not-for-mail"},
		{"Path: a b\r\n", "not-for-mail"},
		{"Path: a!<script>\r\n", "not-for-mail"},
		{"Path:\r\n", "not-for-mail"},
		{"Path: " + strings.Repeat("a!", 300) + "\r\n", "not-for-mail"},
	}
	for _, tc := range tests {
		if got := pathOf([]byte(tc.head)); got != tc.want {
			t.Errorf("pathOf(%.40q) = %q, want %q", tc.head, got, tc.want)
		}
	}
}

// TestAddressesOf: every address whose derived group name is the name
// is among those find looks up.
func TestAddressesOf(t *testing.T) {
	for _, addr := range []string{"dev@lists.example.org", "a.b@example.org", "x@y.z", "list@localhost"} {
		name := GroupName(addr)
		found := false
		for _, a := range addressesOf(name) {
			found = found || a == addr
		}
		if !found {
			t.Errorf("addressesOf(%q) = %q, want it to hold %s", name, addressesOf(name), addr)
		}
	}
	if got := addressesOf(strings.Repeat("a.", 100) + "a"); got != nil {
		t.Errorf("a name of 101 labels gave %d addresses, want none", len(got))
	}
}
