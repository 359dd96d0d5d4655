package mailaddr

import "strings"

// Kind is what an address of a list means.
type Kind string

// Address kinds, following Mailman's conventions.
const (
	KindPost    Kind = "post"    // list@d
	KindRequest Kind = "request" // list-request@d: commands
	KindJoin    Kind = "join"    // list-join@d, list-subscribe@d
	KindLeave   Kind = "leave"   // list-leave@d, list-unsubscribe@d
	KindConfirm Kind = "confirm" // list-confirm+TOKEN@d
	KindOwner   Kind = "owner"   // list-owner@d
	KindBounce  Kind = "bounce"  // list-bounces+LOCAL=DOMAIN@d (VERP) or list-bounces@d
)

// Route is a classified list address.
type Route struct {
	List   string // the list's local part
	Kind   Kind
	Detail string // the +TOKEN or VERP part, "" when none
}

// suffixKinds is the one table of a list's service addresses: Classify
// reads addresses with it, ServiceAddr writes them (the first suffix of a
// kind is the one parley writes), and ParseList refuses list names that
// end in any of its suffixes.
var suffixKinds = []struct {
	suffix string
	kind   Kind
}{
	{"-request", KindRequest},
	{"-join", KindJoin}, {"-subscribe", KindJoin},
	{"-leave", KindLeave}, {"-unsubscribe", KindLeave},
	{"-confirm", KindConfirm},
	{"-owner", KindOwner},
	{"-bounces", KindBounce},
}

// Classify splits a local part into the list it belongs to
// and what it asks for. ok is false for a local part that cannot be a list
// address: a detail (+…) is only allowed on -confirm and -bounces, which
// must have one and may, respectively; anything else with a '+' would be
// accepted now and bounced later, so it is refused. The list part is
// case-insensitive; the detail keeps its case (a VERP detail holds a
// member's local part, which is case-sensitive).
func Classify(local string) (Route, bool) {
	base, detail, hasDetail := strings.Cut(local, "+")
	base = strings.ToLower(base)
	for _, sk := range suffixKinds {
		name, found := strings.CutSuffix(base, sk.suffix)
		if !found || !validListLocal(name) {
			continue
		}
		switch {
		case sk.kind == KindConfirm && (!hasDetail || detail == ""):
			return Route{}, false
		case hasDetail && sk.kind != KindConfirm && sk.kind != KindBounce:
			return Route{}, false
		}
		return Route{List: name, Kind: sk.kind, Detail: detail}, true
	}
	if hasDetail || !validListLocal(base) {
		return Route{}, false
	}
	return Route{List: base, Kind: KindPost}, true
}

// ServiceAddr returns list's address of kind k, with detail after a '+'
// when it is not empty: ServiceAddr("dev@d", KindConfirm, "T0k") is
// "dev-confirm+T0k@d". KindPost is the list's own address.
func ServiceAddr(list string, k Kind, detail string) string {
	local, domain, _ := strings.Cut(list, "@")
	if k != KindPost {
		for _, sk := range suffixKinds {
			if sk.kind == k {
				local += sk.suffix
				break
			}
		}
	}
	if detail != "" {
		local += "+" + detail
	}
	return local + "@" + domain
}

// ListID returns the RFC 2919 list-id for a list address:
// "dev@lists.example.org" -> "dev.lists.example.org".
func ListID(list string) string {
	local, domain, _ := strings.Cut(strings.ToLower(list), "@")
	return local + "." + domain
}

// IsMailerDaemon reports whether an address belongs to mail software
// rather than a person (bounces, MTA notices): such mail is never answered
// and never counts as a person's post.
func IsMailerDaemon(addr string) bool {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	switch local {
	case "mailer-daemon", "mailer_daemon", "double-bounce":
		return true
	}
	return false
}
