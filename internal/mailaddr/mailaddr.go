// Package mailaddr owns parley's idea of an email address: parsing an
// addr-spec from untrusted text, normalising it for comparison, and every
// rule about list addresses: valid list names, a list's service addresses
// (-request, -owner, -confirm+TOKEN, -bounces+VERP, …) read and written
// from one table, the RFC 2919 List-Id, and addresses that belong to mail
// software rather than people.
//
// Addresses compare case-insensitively, local part included. RFC 5321 §2.4
// leaves the case of a local part to the receiving host, but no mail
// provider tells Alice@ from alice@, and treating them as two people gave
// members two copies of every post and failed their logins. Non-ASCII
// domains are compared in their ASCII (A-label) form.
//
// We parse by hand rather than with net/mail because we need the bare
// addr-spec only (no display names, no comments, no group syntax), a precise
// error for each way it can be wrong, and byte-level control over what is
// allowed: no controls, no NUL, bounded lengths.
package mailaddr

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/parley-list/parley/internal/errs"
)

// Limits from RFC 5321 §4.5.3.1.
const (
	maxLocal   = 64
	maxDomain  = 253
	maxAddress = 254
)

// Address is a parsed mailbox address.
type Address struct {
	Local  string // as given
	Domain string // lower-case ASCII (A-labels)
}

// String is the address in normalised form, the one parley compares and
// stores as a key (members, bans, owners, logins, tokens, bounces): local
// part and domain lower-cased. Addresses are matched case-insensitively,
// as Mailman and Google Groups match them, so Grace@School8.Example and
// grace@school8.example are one member; the spelling a person gave is
// kept beside the key for display and delivery.
func (a Address) String() string { return strings.ToLower(a.Local) + "@" + a.Domain }

// Parse parses a bare addr-spec such as "Alice.Smith@Example.org". Leading
// and trailing white space is ignored; anything else that is not a valid
// address is an *errs.Invalid naming the problem.
func Parse(s string) (Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Address{}, errs.Invalidf("empty address")
	}
	if len(s) > maxAddress*4 || !utf8.ValidString(s) {
		return Address{}, errs.Invalidf("%q is not a valid address", clip(s))
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, errs.Invalidf("%q is not an address: no @", clip(s))
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return Address{}, errs.Invalidf("%q: %s", clip(s), err.Msg)
	}
	d, err := normDomain(domain)
	if err != nil {
		return Address{}, errs.Invalidf("%q: %s", clip(s), err.Msg)
	}
	a := Address{Local: local, Domain: d}
	if len(a.String()) > maxAddress {
		return Address{}, errs.Invalidf("%q is longer than %d bytes", clip(s), maxAddress)
	}
	return a, nil
}

// ParseDomain parses and normalises a domain name.
func ParseDomain(s string) (string, error) {
	d, err := normDomain(strings.TrimSpace(s))
	if err != nil {
		return "", errs.Invalidf("%q: %s", clip(s), err.Msg)
	}
	return d, nil
}

func checkLocal(local string) *errs.Invalid {
	switch {
	case local == "":
		return &errs.Invalid{Msg: "empty local part"}
	case len(local) > maxLocal:
		return &errs.Invalid{Msg: "local part longer than 64 bytes"}
	case local[0] == '"':
		return checkQuoted(local)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return &errs.Invalid{Msg: "misplaced dot in local part"}
	}
	for _, r := range local {
		if r != '.' && !isAtext(r) {
			return &errs.Invalid{Msg: "character " + quoteRune(r) + " not allowed in local part"}
		}
	}
	return nil
}

// checkQuoted accepts an RFC 5321 quoted-string local part.
func checkQuoted(local string) *errs.Invalid {
	if len(local) < 2 || local[len(local)-1] != '"' {
		return &errs.Invalid{Msg: "unterminated quoted local part"}
	}
	body := local[1 : len(local)-1]
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\':
			i++
			if i == len(body) || body[i] < 32 || body[i] == 127 {
				return &errs.Invalid{Msg: "bad escape in quoted local part"}
			}
		case c == '"' || c < 32 || c == 127:
			return &errs.Invalid{Msg: "bad character in quoted local part"}
		}
	}
	return nil
}

// isAtext reports whether r may appear in a dot-atom (RFC 5322 atext, plus
// UTF-8 as RFC 6531 allows).
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return r != utf8.RuneError && !isControl(r)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 || r == 0x2028 || r == 0x2029 }

var lookup = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true))

func normDomain(d string) (string, *errs.Invalid) {
	if d == "" {
		return "", &errs.Invalid{Msg: "empty domain"}
	}
	if d[0] == '[' {
		return "", &errs.Invalid{Msg: "address literals are not supported"}
	}
	ascii, err := lookup.ToASCII(d)
	if err != nil || ascii == "" {
		return "", &errs.Invalid{Msg: "bad domain"}
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > maxDomain {
		return "", &errs.Invalid{Msg: "domain longer than 253 bytes"}
	}
	for _, label := range strings.Split(ascii, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", &errs.Invalid{Msg: "bad domain"}
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", &errs.Invalid{Msg: "bad domain"}
			}
		}
	}
	return ascii, nil
}

func quoteRune(r rune) string {
	if isControl(r) || r == utf8.RuneError {
		return "(control)"
	}
	return "'" + string(r) + "'"
}

// clip bounds how much of hostile input goes back into an error message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
