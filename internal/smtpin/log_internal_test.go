package smtpin

import "testing"

// TestWithoutDetail: the +detail of a recipient (a live confirmation code
// on -confirm addresses) never reaches the log.
func TestWithoutDetail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dev-confirm+abcdef234@lists.example.org", "dev-confirm+…@lists.example.org"},
		{"dev-bounces+bob=example.org@lists.example.org", "dev-bounces+…@lists.example.org"},
		{"dev@lists.example.org", "dev@lists.example.org"},
		{"no-at-sign+x", "no-at-sign+…"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := withoutDetail(tt.in); got != tt.want {
			t.Errorf("withoutDetail(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
