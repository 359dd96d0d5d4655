package mailmsg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Part summarises one MIME part.
type Part struct {
	Path     string `json:"path"` // "1", "1.2", … as IMAP numbers them; "" for a single-part message
	Type     string `json:"type"` // lower case, e.g. "text/plain"
	Charset  string `json:"charset,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Name     string `json:"name,omitempty"`
	Size     int64  `json:"size"` // encoded bytes
}

// MIMESummary is a message's structure, flattened in document order.
type MIMESummary struct {
	Parts     []Part `json:"parts"`
	Total     int    `json:"total"`               // parts seen, including those not listed
	Malformed bool   `json:"malformed,omitempty"` // a boundary was missing or a part header did not parse
}

func messageHeader(th textproto.Header) message.Header { return message.Header{Header: th} }

// frame is one open multipart on the walk's explicit stack.
type frame struct {
	mr    *textproto.MultipartReader
	path  string
	index int
}

// summariseMIME walks the MIME tree iteratively, with an explicit stack
// bounded by MaxMIMEDepth: a message nested deeper is refused, never
// followed. Other damage (a boundary that never appears, a broken part
// header) is recorded as Malformed; the message is still accepted, since
// its bytes are archived as they are.
func summariseMIME(th textproto.Header, body []byte, lim Limits) (MIMESummary, error) {
	var sum MIMESummary
	top := messageHeader(th)
	mr, leaf := openPart(top, bytes.NewReader(body))
	if mr == nil {
		sum.add(lim, "", top, leaf)
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
		f.index++
		path := strconv.Itoa(f.index)
		if f.path != "" {
			path = f.path + "." + path
		}
		h := messageHeader(p.Header)
		child, leaf := openPart(h, p)
		if child == nil {
			sum.add(lim, path, h, leaf)
			continue
		}
		if len(stack) >= lim.MaxMIMEDepth {
			return sum, &Error{Malformed, fmt.Sprintf("MIME structure nested deeper than %d levels", lim.MaxMIMEDepth)}
		}
		stack = append(stack, frame{mr: child, path: path})
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

func (s *MIMESummary) add(lim Limits, path string, h message.Header, body io.Reader) {
	s.Total++
	size, err := io.Copy(io.Discard, body)
	if err != nil {
		s.Malformed = true
	}
	if len(s.Parts) >= lim.MaxMIMEParts {
		return
	}
	t, params, err := h.ContentType()
	if err != nil {
		t, params = "application/octet-stream", nil
	}
	p := Part{
		Path:     path,
		Type:     clean(strings.ToLower(t), 100),
		Charset:  clean(strings.ToLower(params["charset"]), 50),
		Encoding: clean(strings.ToLower(h.Get("Content-Transfer-Encoding")), 50),
		Size:     size,
	}
	if _, dp, err := h.ContentDisposition(); err == nil && dp["filename"] != "" {
		p.Name = clean(dp["filename"], 200)
	} else if params["name"] != "" {
		p.Name = clean(params["name"], 200)
	}
	s.Parts = append(s.Parts, p)
}
