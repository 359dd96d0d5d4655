package ingest

import (
	"bytes"
	"testing"
)

// FuzzRenameField: renaming a header field touches the header only, keeps
// every byte of the body, and leaves no field of the old name behind.
func FuzzRenameField(f *testing.F) {
	f.Add([]byte("Message-ID: bad\r\nSubject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("message-id : <>\r\n\tfolded\r\nMessage-Id:x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		hlen := bytes.Index(raw, []byte("\r\n\r\n"))
		if hlen < 0 {
			return
		}
		hlen += 4
		out, grew := renameField(raw, hlen, "Message-ID", "X-Original-Message-ID")
		if !bytes.Equal(out[hlen+grew:], raw[hlen:]) {
			t.Fatalf("body changed: %q -> %q", raw, out)
		}
		if hasField(out[:hlen+grew], "Message-ID") {
			t.Fatalf("a Message-ID field is left in %q", out)
		}
	})
}
