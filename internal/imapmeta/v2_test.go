package imapmeta

import (
	"encoding/binary"

	"github.com/emersion/go-imap/v2"
)

// appendEnvelopeV2 writes an envelope in version 2's binary form (see
// envelope.go), which parley no longer writes but still reads.
func appendEnvelopeV2(b []byte, e *imap.Envelope) []byte {
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	if e.Date.IsZero() {
		b = append(b, 0)
	} else {
		_, off := e.Date.Zone()
		b = binary.AppendVarint(binary.AppendVarint(append(b, 1), e.Date.Unix()), int64(off))
	}
	b = str(b, e.Subject)
	for _, as := range [][]imap.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		if as == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(as))+1)
		for _, a := range as {
			b = str(str(str(b, a.Name), a.Mailbox), a.Host)
		}
	}
	if e.InReplyTo == nil {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(e.InReplyTo))+1)
		for _, s := range e.InReplyTo {
			b = str(b, s)
		}
	}
	return str(b, e.MessageID)
}
