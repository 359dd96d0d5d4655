package imapserver_test

import (
	"strings"
	"testing"
)

// TestHugeLiteralRefused: a synchronising literal the server will not
// buffer (4 GiB) is refused at once with NO [TOOBIG], never a "+"
// continuation and never silence, wherever it comes (a login name, a
// mailbox, a search key, a LIST pattern); the session goes on.
func TestHugeLiteralRefused(t *testing.T) {
	r := startRaw(t, nil)
	if got := r.cmd("a", "LOGIN {4294967295}"); !strings.HasPrefix(got, "a NO [TOOBIG]") {
		t.Errorf("LOGIN with a 4 GiB literal answered:\n%s", got)
	}
	r.cmd("b", "LOGIN u p")
	for _, c := range []string{"EXAMINE {4294967295}", "LIST \"\" {4294967295}", "STATUS {4294967295}"} {
		if got := r.cmd("c", c); !strings.HasPrefix(got, "c NO [TOOBIG]") {
			t.Errorf("%s answered:\n%s", c, got)
		}
	}
	r.cmd("d", "SELECT INBOX")
	if got := r.cmd("e", "SEARCH TEXT {4294967295}"); !strings.HasPrefix(got, "e NO [TOOBIG]") {
		t.Errorf("SEARCH TEXT with a 4 GiB literal answered:\n%s", got)
	}
	if got := r.cmd("g", "NOOP"); !strings.HasPrefix(got, "g OK") {
		t.Errorf("the session is not usable after the refusals:\n%s", got)
	}
}
