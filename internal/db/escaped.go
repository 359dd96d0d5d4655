package db

import (
	"bytes"
	"fmt"
)

// EscapedBytea scans a bytea selected as encode(col, 'escape'). lib/pq
// reads bytea in PostgreSQL's hex form, two characters a byte, and decodes
// it; the escape form of mostly-ASCII data such as mail is about one
// character a byte (only backslashes, NULs and bytes with the high bit
// set are escaped), so reading message bodies this way moves half the
// bytes and decodes them with a scan for backslashes.
type EscapedBytea []byte

// Scan decodes the escape form: `\\` is a backslash, `\ooo` an octal byte.
func (e *EscapedBytea) Scan(src any) error {
	var in []byte
	switch v := src.(type) {
	case nil:
		*e = nil
		return nil
	case string:
		in = []byte(v)
	case []byte:
		in = bytes.Clone(v) // the driver may reuse its buffer
	default:
		return fmt.Errorf("db: EscapedBytea from %T", src)
	}
	out, err := unescapeBytea(in)
	*e = out
	return err
}

// unescapeBytea decodes in place: the result is never longer.
func unescapeBytea(b []byte) ([]byte, error) {
	i := bytes.IndexByte(b, '\\')
	if i < 0 {
		return b, nil
	}
	out := b[:i]
	for i < len(b) {
		if b[i] != '\\' {
			// Copy the run up to the next escape at once: most bytes of
			// mail need none.
			j := bytes.IndexByte(b[i:], '\\')
			if j < 0 {
				j = len(b) - i
			}
			out = append(out, b[i:i+j]...)
			i += j
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\\':
			out = append(out, '\\')
			i += 2
		case i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) && b[i+1] <= '3':
			out = append(out, (b[i+1]-'0')<<6|(b[i+2]-'0')<<3|(b[i+3]-'0'))
			i += 4
		default:
			return nil, fmt.Errorf("db: bad escape at byte %d of an escaped bytea", i)
		}
	}
	return out, nil
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
