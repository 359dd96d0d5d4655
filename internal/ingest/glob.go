package ingest

import (
	"strings"

	"github.com/parley-list/parley/internal/members"
)

// Glob reports whether s matches pattern, where '*' matches any run of
// characters (including none) and '?' exactly one; everything else matches
// itself. It runs in O(len(pattern)·len(s)) without recursion, so a
// hostile pattern such as "*a*a*a*b" cannot blow up.
func Glob(pattern, s string) bool {
	p, n := []rune(pattern), []rune(s)
	pi, ni := 0, 0
	star, mark := -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func memberRole(s string) members.Role {
	r, err := members.ParseRole(s)
	if err != nil {
		return members.RoleMember
	}
	return r
}

// ParseBanPattern validates and normalises a ban pattern.
func ParseBanPattern(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 320 || strings.ContainsAny(s, " \t\r\n\x00") {
		return "", false
	}
	return s, true
}
