package imapserver_test

import (
	"strings"
	"testing"
)

// TestHeaderFieldsEcho: FETCH BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] is
// answered with the item as asked, BODY[HEADER.FIELDS (SUBJECT FROM)],
// not with the names quoted; a name that is not an atom stays a string.
func TestHeaderFieldsEcho(t *testing.T) {
	r := startRaw(t, nil)
	r.cmd("a", "LOGIN u p")
	r.cmd("b", "SELECT INBOX")
	got := r.cmd("c", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT From)]")
	if !strings.Contains(got, "BODY[HEADER.FIELDS (SUBJECT From)] {") {
		t.Errorf("FETCH answered:\n%s", got)
	}
	got = r.cmd("d", "FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (\"X Odd\" TO)]")
	if !strings.Contains(got, `BODY[HEADER.FIELDS.NOT ("X Odd" TO)] {`) {
		t.Errorf("FETCH answered:\n%s", got)
	}
}
