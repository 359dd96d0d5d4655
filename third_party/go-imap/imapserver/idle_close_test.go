package imapserver_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
)

// idleCloseSession notes whether Close ran while Idle was still running.
type idleCloseSession struct {
	imapserver.Session
	idling  *atomic.Bool
	overlap *atomic.Bool
	closed  chan struct{}
}

func (s idleCloseSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idling.Store(true)
	<-stop
	// A session may take a moment to leave IDLE (a poll in flight).
	time.Sleep(50 * time.Millisecond)
	s.idling.Store(false)
	return nil
}

func (s idleCloseSession) Close() error {
	if s.idling.Load() {
		s.overlap.Store(true)
	}
	close(s.closed)
	return s.Session.Close()
}

// TestIdleEndsBeforeClose: a client that drops the connection during
// IDLE makes the server close the session only after Session.Idle has
// returned, so a session needs no lock between the two.
func TestIdleEndsBeforeClose(t *testing.T) {
	var idling, overlap atomic.Bool
	closed := make(chan struct{})
	r := startRaw(t, func(s imapserver.Session) imapserver.Session {
		return idleCloseSession{Session: s, idling: &idling, overlap: &overlap, closed: closed}
	})
	r.cmd("a", "LOGIN u p")
	r.cmd("b", "SELECT INBOX")
	if _, err := r.c.Write([]byte("c IDLE\r\n")); err != nil {
		t.Fatal(err)
	}
	r.line() // + idling
	r.c.Close()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("session not closed after the client left")
	}
	if overlap.Load() {
		t.Error("Session.Close ran while Session.Idle was still running")
	}
}
