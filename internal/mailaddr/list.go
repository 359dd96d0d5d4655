package mailaddr

import (
	"strings"

	"github.com/parley-list/parley/internal/errs"
)

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
	// A list whose own name ends like a service address (list-request@,
	// list-owner@, …) would be ambiguous.
	for _, sk := range suffixKinds {
		if strings.HasSuffix(a.Local, sk.suffix) {
			return Address{}, errs.Invalidf("%q: a list name must not end in %q (reserved for the list's service addresses)", clip(s), sk.suffix)
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
