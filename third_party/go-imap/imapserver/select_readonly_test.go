package imapserver_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// readOnlySession opens every mailbox read-only, as a server of an
// archive does.
type readOnlySession struct{ imapserver.Session }

func (s readOnlySession) Select(name string, o *imap.SelectOptions) (*imap.SelectData, error) {
	o.ReadOnly = true
	return s.Session.Select(name, o)
}

// TestSelectReadOnly: a session that opens a mailbox read-only makes
// SELECT answer [READ-ONLY] (RFC 3501 6.3.1), not [READ-WRITE]; an
// ordinary session's SELECT still answers [READ-WRITE].
func TestSelectReadOnly(t *testing.T) {
	r := startRaw(t, func(s imapserver.Session) imapserver.Session { return readOnlySession{s} })
	r.cmd("a", "LOGIN u p")
	if got := r.cmd("b", "SELECT INBOX"); !strings.Contains(got, "b OK [READ-ONLY] SELECT completed") {
		t.Errorf("SELECT of a read-only mailbox answered:\n%s", got)
	}
	rw := startRaw(t, nil)
	rw.cmd("a", "LOGIN u p")
	if got := rw.cmd("b", "SELECT INBOX"); !strings.Contains(got, "b OK [READ-WRITE] SELECT completed") {
		t.Errorf("SELECT of a writable mailbox answered:\n%s", got)
	}
}
