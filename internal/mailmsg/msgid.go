package mailmsg

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on message identifiers.
const (
	// MaxRefs is how many References a message keeps: the first (the
	// thread's root) and the most recent MaxRefs-1, which is all threading
	// needs. A header with 100,000 ids costs no more than one with 64.
	MaxRefs = 64
	// maxIDLen bounds one id; longer tokens are not ids.
	maxIDLen = 500
)

// MsgIDs extracts the message identifiers from a Message-ID, In-Reply-To or
// References value: every <...> token with no white space inside, in order,
// without the angle brackets. Garbage between tokens is skipped rather than
// ending the scan (go-message's MsgIDList stops at the first bad token and
// loses the rest). Duplicates are dropped, keeping the first occurrence.
func MsgIDs(v string) []string {
	var ids []string
	seen := map[string]bool{}
	for {
		open := strings.IndexByte(v, '<')
		if open < 0 {
			return ids
		}
		v = v[open+1:]
		end := strings.IndexAny(v, "<> \t\r\n")
		if end < 0 {
			return ids
		}
		if v[end] != '>' {
			v = v[end:] // not an id; resume at the next character
			continue
		}
		id := v[:end]
		v = v[end+1:]
		if validID(id) && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
}

// ReplyID picks the message id an In-Reply-To value names as the parent,
// "" when it names none. The field should hold msg-ids only, but mail
// software writes prose around them: exmh and MH write
// `Message from Name <addr> of "date." <id>` (an address first), Gnus and
// rmail `<id> (message from Name <addr> on date)` (an address in a
// comment). So: a token inside a comment never counts, nor one without an
// '@'; of the rest, one that References also holds wins, then one that is
// not written right after a word (as "Name <addr>" is), then the first.
// The scan is one pass with no recursion; comment nesting is only counted.
func ReplyID(v string, refs []string) string {
	inRefs := map[string]bool{}
	for _, r := range refs {
		inRefs[r] = true
	}
	var first, plain string
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '<':
			end := strings.IndexAny(v[i+1:], "<> \t\r\n")
			if end < 0 || v[i+1+end] != '>' {
				continue
			}
			id := v[i+1 : i+1+end]
			afterWord := wordBefore(v[:i])
			i += end + 1
			if depth > 0 || !validID(id) || !strings.Contains(id, "@") {
				continue
			}
			if inRefs[id] {
				return id
			}
			if first == "" {
				first = id
			}
			if plain == "" && !afterWord {
				plain = id
			}
		}
	}
	if plain != "" {
		return plain
	}
	return first
}

// wordBefore reports whether s ends, white space aside, in a letter or
// digit: the '<' after it opens "Name <addr>", not a lone id.
func wordBefore(s string) bool {
	s = strings.TrimRight(s, " \t\r\n")
	if s == "" {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// bareID reads a Message-ID written without its angle brackets
// ("Message-ID: 1234.5678@host"), which some old software sends: the
// sender's meaning is plain, and taking it keeps the replies that cite it
// (with brackets) in its thread. Anything else without brackets is not
// an id.
func bareID(v string) string {
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, "<>()\" \t\r\n,;") || !strings.Contains(v, "@") || !validID(v) {
		return ""
	}
	return v
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}

// BoundRefs keeps the first reference and the newest MaxRefs-1.
func BoundRefs(refs []string) []string {
	if len(refs) <= MaxRefs {
		return refs
	}
	out := make([]string, 0, MaxRefs)
	out = append(out, refs[0])
	return append(out, refs[len(refs)-(MaxRefs-1):]...)
}

// ThreadRefs combines References and In-Reply-To into the ancestor list
// used for threading, oldest first: References in order, then the
// In-Reply-To id if References did not end with it (some clients send only
// In-Reply-To, some put it elsewhere). self is removed: a message never
// refers to itself. Only ids with an '@' count: real message ids have one,
// and this drops the well-known garbage such as git send-email's
// "In-Reply-To: <yes>", which would otherwise tie unrelated threads.
func ThreadRefs(references, inReplyTo []string, self string) []string {
	var out []string
	seen := map[string]bool{self: true}
	add := func(id string) {
		if !seen[id] && strings.Contains(id, "@") {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, id := range references {
		add(id)
	}
	if len(inReplyTo) > 0 && inReplyTo[0] != self && strings.Contains(inReplyTo[0], "@") {
		if irt := inReplyTo[0]; len(out) == 0 || out[len(out)-1] != irt {
			// In-Reply-To names the direct parent: it goes last.
			out = append(removeID(out, irt), irt)
		}
	}
	return BoundRefs(out)
}

func removeID(ids []string, id string) []string {
	out := ids[:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}
