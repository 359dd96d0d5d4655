package imapserver_test

import (
	"strings"
	"testing"
)

// TestClientSyntaxErrorsAreBad: a malformed sequence set or a mailbox
// name that is not modified UTF-7 is the client's error, answered BAD,
// not NO [SERVERBUG].
func TestClientSyntaxErrorsAreBad(t *testing.T) {
	r := startRaw(t, nil)
	r.cmd("a", "LOGIN u p")
	if got := r.cmd("b", `SELECT "&Jjo-bad&"`); !strings.HasPrefix(got, "b BAD") {
		t.Errorf("SELECT of a name that is not modified UTF-7 answered:\n%s", got)
	}
	r.cmd("c", "SELECT INBOX")
	for _, c := range []string{"FETCH 0 FLAGS", "FETCH x:y FLAGS", "UID FETCH 1:: FLAGS", "STORE 4294967296 +FLAGS (\\Seen)"} {
		if got := r.cmd("d", c); !strings.HasPrefix(got, "d BAD") {
			t.Errorf("%s answered:\n%s", c, got)
		}
	}
	if got := r.cmd("e", "NOOP"); !strings.HasPrefix(got, "e OK") {
		t.Errorf("the session is not usable afterwards:\n%s", got)
	}
}
