package mailaddr

import "strings"

// VERP returns the return path for one member's copy of a list's mail:
// list-bounces+local=domain@listdomain, so a bounce names the member it is
// about whatever the bounce says.
func VERP(list, rcpt string) string {
	at := strings.LastIndexByte(rcpt, '@')
	if at < 0 {
		return ServiceAddr(list, KindBounce, "")
	}
	return ServiceAddr(list, KindBounce, rcpt[:at]+"="+rcpt[at+1:])
}

// DecodeVERP returns the member address a VERP detail ("local=domain")
// stands for.
func DecodeVERP(detail string) (string, bool) {
	eq := strings.LastIndexByte(detail, '=')
	if eq <= 0 || eq == len(detail)-1 || strings.ContainsRune(detail, '@') {
		return "", false
	}
	return detail[:eq] + "@" + detail[eq+1:], true
}
