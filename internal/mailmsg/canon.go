// Package mailmsg owns parley's reading of RFC 5322 messages from untrusted
// sources: canonical line endings, the header fields parley acts on
// (Message-ID, References, From, Subject, Date, List-Id, X-Loop,
// Auto-Submitted), a bounded check of the MIME structure, and the key that makes
// intake idempotent.
//
// Everything here is lenient where being strict would lose mail (one bad
// entry in References must not drop the others) and bounded where input
// could be hostile: header size and field count, MIME depth and part count,
// the number of references kept. Nothing recurses on message data.
package mailmsg

import "bytes"

// Canonicalize returns raw with every line ending as CRLF: a bare LF or a
// bare CR becomes CRLF. parley stores, signs, sends and serves exactly these
// bytes, so they must agree everywhere (and IMAP requires CRLF). When raw is
// already canonical it is returned as is, without copying.
func Canonicalize(raw []byte) []byte {
	if isCanonical(raw) {
		return raw
	}
	out := make([]byte, 0, len(raw)+len(raw)/32+2)
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

func isCanonical(raw []byte) bool {
	for i := 0; ; {
		j := bytes.IndexAny(raw[i:], "\r\n")
		if j < 0 {
			return true
		}
		i += j
		if raw[i] == '\n' || i+1 >= len(raw) || raw[i+1] != '\n' {
			return false
		}
		i += 2
	}
}

// HeaderLen returns the length of the header block including the blank
// line that ends it, or len(raw) when the message is all header.
func HeaderLen(raw []byte) int {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return len(raw)
}
