package mailmsg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// MIMEShape is what intake checks of a message's MIME structure. Nothing
// of it is stored: IMAP's BODYSTRUCTURE is computed by internal/imapmeta.
type MIMEShape struct {
	Parts     int  // leaf parts
	Malformed bool // a boundary was missing or a part header did not parse
}

func messageHeader(th textproto.Header) message.Header { return message.Header{Header: th} }

// frame is one open multipart on the walk's explicit stack.
type frame struct {
	mr *textproto.MultipartReader
}

// checkMIME walks the MIME tree iteratively, with an explicit stack
// bounded by MaxMIMEDepth: a message nested deeper is refused, never
// followed. Other damage (a boundary that never appears, a broken part
// header) is recorded as Malformed; the message is still accepted, since
// its bytes are archived as they are.
func checkMIME(th textproto.Header, body []byte, lim Limits) (MIMEShape, error) {
	var sum MIMEShape
	mr, leaf := openPart(messageHeader(th), bytes.NewReader(body))
	if mr == nil {
		sum.leaf(leaf)
		return sum, nil
	}
	stack := []frame{{mr: mr}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		p, err := f.mr.NextPart()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				sum.Malformed = true
			}
			stack = stack[:len(stack)-1]
			continue
		}
		child, leaf := openPart(messageHeader(p.Header), p)
		if child == nil {
			sum.leaf(leaf)
			continue
		}
		if len(stack) >= lim.MaxMIMEDepth {
			return sum, &Error{Malformed, fmt.Sprintf("MIME structure nested deeper than %d levels", lim.MaxMIMEDepth)}
		}
		stack = append(stack, frame{mr: child})
	}
	return sum, nil
}

// openPart returns a multipart reader for a multipart part, or the part's
// body reader for a leaf.
func openPart(h message.Header, body io.Reader) (*textproto.MultipartReader, io.Reader) {
	t, params, err := h.ContentType()
	if err == nil && strings.HasPrefix(t, "multipart/") && params["boundary"] != "" {
		return textproto.NewMultipartReader(body, params["boundary"]), nil
	}
	return nil, body
}

// leaf reads a leaf part to its end, which is where the multipart
// reader finds the next boundary.
func (s *MIMEShape) leaf(body io.Reader) {
	s.Parts++
	if _, err := io.Copy(io.Discard, body); err != nil {
		s.Malformed = true
	}
}
