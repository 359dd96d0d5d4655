package mailaddr

import (
	"strings"

	"github.com/parley-list/parley/internal/errs"
)

// ReservedSuffixes are the local-part endings of a list's service
// addresses (list-request@, list-owner@, ...). A list whose own name ends in
// one of them would be ambiguous, so such names are refused.
var ReservedSuffixes = []string{
	"-request", "-owner", "-bounces", "-join", "-leave",
	"-subscribe", "-unsubscribe", "-confirm",
}

// ParseList parses a list address. List local parts are parley's own names,
// so unlike member addresses they are case-insensitive and kept in lower
// case, restricted to [a-z0-9._-] (starting with a letter or digit) so that
// they are also safe IMAP mailbox names and file names.
func ParseList(s string) (Address, error) {
	a, err := Parse(s)
	if err != nil {
		return Address{}, err
	}
	a.Local = strings.ToLower(a.Local)
	if !validListLocal(a.Local) {
		return Address{}, errs.Invalidf("%q: a list name may use only a-z, 0-9, '.', '_' and '-', starting with a letter or digit", clip(s))
	}
	for _, suf := range ReservedSuffixes {
		if strings.HasSuffix(a.Local, suf) {
			return Address{}, errs.Invalidf("%q: a list name must not end in %q (reserved for the list's service addresses)", clip(s), suf)
		}
	}
	return a, nil
}

func validListLocal(l string) bool {
	if l == "" {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}
