package mailmsg

import (
	"strings"
	"unicode"
)

// replyPrefixes are the reply and forward markers mail clients put in
// front of a subject, in several languages, compared in lower case.
var replyPrefixes = []string{"re", "aw", "sv", "vs", "antw", "fwd", "fw", "wg", "tr"}

// BaseSubject reduces a subject to what identifies its conversation, as
// RFC 5256 (IMAP SORT) describes: reply and forward markers ("Re:",
// "Fwd:", "AW:", "Re[2]:"), list tags ("[dev]") and white space runs are
// removed, and the rest is lower-cased. It loops a bounded number of times
// and never recurses. isReply reports whether a reply marker was found.
func BaseSubject(s string) (base string, isReply bool) {
	s = strings.Join(strings.Fields(s), " ")
	for range 32 {
		t := strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(t, "["):
			end := strings.IndexByte(t, ']')
			if end < 0 {
				return strings.ToLower(t), isReply
			}
			t = t[end+1:]
		default:
			rest, ok := cutReplyMarker(t)
			if !ok {
				return strings.ToLower(t), isReply
			}
			isReply = true
			t = rest
		}
		if strings.TrimSpace(t) == "" {
			return strings.ToLower(strings.TrimSpace(s)), isReply
		}
		s = t
	}
	return strings.ToLower(strings.TrimSpace(s)), isReply
}

// cutReplyMarker removes one leading "re:", "re[3]:", "fwd:" and the like.
func cutReplyMarker(t string) (string, bool) {
	lower := strings.ToLower(t)
	for _, p := range replyPrefixes {
		if !strings.HasPrefix(lower, p) {
			continue
		}
		rest := t[len(p):]
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 || strings.IndexFunc(rest[1:end], func(r rune) bool { return !unicode.IsDigit(r) }) >= 0 {
				continue
			}
			rest = rest[end+1:]
		}
		rest = strings.TrimLeft(rest, " ")
		if strings.HasPrefix(rest, ":") {
			return rest[1:], true
		}
	}
	return t, false
}
