// Package mbox reads and writes mbox files (mboxrd, and mboxo for
// reading), the format archives move between list servers in.
//
// We write our own because no maintained Go mbox package is available to
// this project (emersion/go-mbox is not served by the module proxy here),
// and the format is small: what matters is getting From_ quoting right in
// both directions, streaming (archives are gigabytes), and bounding memory
// per message, all of which this package does in a few functions.
package mbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Format is the quoting convention of an mbox file.
type Format int

// Formats.
const (
	// MboxRD quotes every line matching ^>*From  with one more '>', so
	// reading removes exactly one: lossless.
	MboxRD Format = iota
	// MboxO quotes only ^From ; reading removes the '>' of ^>From .
	MboxO
)

// Message is one message of an mbox file.
type Message struct {
	Data     []byte    // the message with LF line ends, From_ quoting removed
	Sender   string    // from the From_ line
	Date     time.Time // from the From_ line; zero when it does not parse
	Offset   int64     // byte offset of the From_ line, for error messages
	TooLarge bool      // Data was cut at the reader's size limit
}

// Reader reads messages one at a time.
type Reader struct {
	br      *bufio.Reader
	format  Format
	max     int
	offset  int64
	pending []byte // the next message's From_ line, already read
	started bool
}

// NewReader returns a reader; messages longer than max bytes are returned
// cut short with TooLarge set (max <= 0: 64 MiB).
func NewReader(r io.Reader, format Format, max int) *Reader {
	if max <= 0 {
		max = 64 << 20
	}
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), format: format, max: max}
}

// ErrNotMbox says the input does not start with a From_ line.
var ErrNotMbox = errors.New("not an mbox file: it does not start with a \"From \" line")

// Next returns the next message, or io.EOF after the last.
func (r *Reader) Next() (*Message, error) {
	if !r.started {
		r.started = true
		line, err := r.readLine()
		if err == io.EOF && len(line) == 0 {
			return nil, io.EOF
		}
		if !bytes.HasPrefix(line, []byte("From ")) {
			return nil, ErrNotMbox
		}
		r.pending = line
	}
	if r.pending == nil {
		return nil, io.EOF
	}
	m := &Message{Offset: r.offset - int64(len(r.pending))}
	m.Sender, m.Date = parseFromLine(r.pending)
	r.pending = nil
	var buf bytes.Buffer
	prevBlank := false
	for {
		line, err := r.readLine()
		if len(line) > 0 && prevBlank && bytes.HasPrefix(line, []byte("From ")) {
			r.pending = line
			break
		}
		if len(line) > 0 {
			prevBlank = isBlank(line)
			r.append(m, &buf, r.unquote(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	m.Data = trimSeparator(buf.Bytes())
	return m, nil
}

func (r *Reader) append(m *Message, buf *bytes.Buffer, line []byte) {
	if buf.Len()+len(line) > r.max {
		m.TooLarge = true
		return
	}
	buf.Write(line)
}

// readLine returns the next line with its LF (the last line may lack one).
// Lines are not limited here: the message size limit bounds what is kept.
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		full := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = r.br.ReadSlice('\n')
			if len(full) < 1<<20 { // keep the start of a huge line
				full = append(full, line...)
			}
		}
		r.offset += int64(len(full))
		return full, err
	}
	r.offset += int64(len(line))
	return append([]byte(nil), line...), err
}

// unquote removes one level of From_ quoting.
func (r *Reader) unquote(line []byte) []byte {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	if i == 0 || !bytes.HasPrefix(line[i:], []byte("From ")) {
		return line
	}
	if r.format == MboxO && i != 1 {
		return line
	}
	return line[1:]
}

func isBlank(line []byte) bool {
	return len(bytes.TrimRight(line, "\r\n")) == 0
}

// trimSeparator removes the blank line that separates a message from the
// next From_ line.
func trimSeparator(b []byte) []byte {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n\r\n")):
		return b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n\n")):
		return b[:len(b)-1]
	}
	return b
}

// parseFromLine reads "From sender Mon Jan  2 15:04:05 2006".
func parseFromLine(line []byte) (string, time.Time) {
	rest := strings.TrimSpace(strings.TrimPrefix(string(line), "From "))
	sender, date, _ := strings.Cut(rest, " ")
	t, err := time.Parse(time.ANSIC, strings.TrimSpace(date))
	if err != nil {
		t = time.Time{}
	}
	return sender, t
}

// Writer writes mboxrd.
type Writer struct {
	w *bufio.Writer
}

// NewWriter returns a writer; call Flush at the end.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 64<<10)} }

// Write appends one message given with CRLF or LF line ends; it is
// written with LF line ends, From_-quoted, followed by a blank line.
func (w *Writer) Write(sender string, date time.Time, msg []byte) error {
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	fmt.Fprintf(w.w, "From %s %s\n", strings.Map(noSpace, sender), date.UTC().Format(time.ANSIC))
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i+1], msg[i+1:]
		} else {
			msg = nil
		}
		if bytes.HasSuffix(line, []byte("\n")) {
			line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		}
		i := 0
		for i < len(line) && line[i] == '>' {
			i++
		}
		if bytes.HasPrefix(line[i:], []byte("From ")) {
			w.w.WriteByte('>')
		}
		w.w.Write(line)
		w.w.WriteByte('\n')
	}
	_, err := w.w.WriteString("\n")
	return err
}

func noSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
		return '_'
	}
	return r
}

// Flush writes out buffered data.
func (w *Writer) Flush() error { return w.w.Flush() }
