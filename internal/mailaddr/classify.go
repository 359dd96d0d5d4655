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

var suffixKinds = []struct {
	suffix string
	kind   Kind
}{
	{"-request", KindRequest},
	{"-subscribe", KindJoin}, {"-join", KindJoin},
	{"-unsubscribe", KindLeave}, {"-leave", KindLeave},
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
