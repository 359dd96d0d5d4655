package imapd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
)

// TestLibraryLogLevels: the library's reports of clients that hung up or
// failed the TLS handshake are debug noise; anything else it reports is a
// warning.
func TestLibraryLogLevels(t *testing.T) {
	reset := &net.OpError{Op: "write", Net: "tcp", Err: &net.OpError{Op: "write", Err: syscall.ECONNRESET}}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"connection reset", reset, "level=DEBUG"},
		{"broken pipe", &net.OpError{Op: "write", Err: syscall.EPIPE}, "level=DEBUG"},
		{"closed", net.ErrClosed, "level=DEBUG"},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "level=DEBUG"},
		{"TLS alert", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, "level=DEBUG"},
		// crypto/tls's own alerts are of an unexported type.
		{"TLS alert from crypto/tls", &net.OpError{Op: "local error", Err: errors.New("tls: bad certificate")}, "level=DEBUG"},
		{"something else", errors.New("parse error"), "level=WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			p := slogPrintf{slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			p.Printf("handling FETCH command: %v", tt.err)
			if got := b.String(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %s", got, tt.want)
			}
		})
	}
}
