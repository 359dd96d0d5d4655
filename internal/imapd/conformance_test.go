package imapd_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// lineSession speaks IMAP one command at a time and waits for each
// tagged answer, as a client does, so a server that does not answer
// fails the test instead of being covered by the next command.
type lineSession struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func openLines(t *testing.T, addr string) *lineSession {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &lineSession{t: t, c: c, br: bufio.NewReader(c)}
	s.read("*")
	return s
}

// read returns the lines up to the one that starts with tag.
func (s *lineSession) read(tag string) string {
	s.t.Helper()
	var all strings.Builder
	for {
		s.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := s.br.ReadString('\n')
		if err != nil {
			s.t.Fatalf("no answer for %s within 5 s: %v (so far: %q)", tag, err, all.String())
		}
		all.WriteString(l)
		if strings.HasPrefix(l, tag+" ") {
			return all.String()
		}
	}
}

func (s *lineSession) cmd(tag, command string) string {
	s.t.Helper()
	if _, err := s.c.Write([]byte(tag + " " + command + "\r\n")); err != nil {
		s.t.Fatal(err)
	}
	return s.read(tag)
}

// TestProtocolAnswers: what conformance runs and real clients met.
// SELECT of a list answers [READ-ONLY]; a 4 GiB synchronising literal
// anywhere is refused at once with NO [TOOBIG] and the session goes on;
// HEADER.FIELDS names come back as the client wrote them; malformed
// sequence sets and mailbox names are the client's error (BAD, not NO
// [SERVERBUG]).
func TestProtocolAnswers(t *testing.T) {
	f := newFixture(t)
	s := openLines(t, f.addr)
	if got := s.cmd("a", "LOGIN {4294967295}"); !strings.HasPrefix(got, "a NO [TOOBIG]") {
		t.Errorf("LOGIN with a 4 GiB literal:\n%s", got)
	}
	s.cmd("b", "LOGIN anonymous x")
	for _, c := range []string{"EXAMINE {4294967295}", `LIST "" {4294967295}`} {
		if got := s.cmd("c", c); !strings.HasPrefix(got, "c NO [TOOBIG]") {
			t.Errorf("%s:\n%s", c, got)
		}
	}
	if got := s.cmd("d", "SELECT dev@lists.example.org"); !strings.Contains(got, "d OK [READ-ONLY]") {
		t.Errorf("SELECT:\n%s", got)
	}
	if got := s.cmd("e", "SEARCH TEXT {4294967295}"); !strings.HasPrefix(got, "e NO [TOOBIG]") {
		t.Errorf("SEARCH TEXT with a 4 GiB literal:\n%s", got)
	}
	if got := s.cmd("f", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"); !strings.Contains(got, "BODY[HEADER.FIELDS (SUBJECT FROM)] {") {
		t.Errorf("FETCH HEADER.FIELDS:\n%s", got)
	}
	for _, c := range []string{"FETCH 0 FLAGS", "FETCH x:y FLAGS", `STATUS "&Jjo-bad&" (MESSAGES)`} {
		if got := s.cmd("g", c); !strings.HasPrefix(got, "g BAD") {
			t.Errorf("%s:\n%s", c, got)
		}
	}
	if got := s.cmd("h", "STORE 1 +FLAGS (\\Seen)"); !strings.Contains(got, "h OK") {
		t.Errorf("STORE after SELECT (session flags, as fetchmail needs):\n%s", got)
	}
	if got := s.cmd("i", "NOOP"); !strings.HasPrefix(got, "i OK") {
		t.Errorf("the session is not usable after all that:\n%s", got)
	}
}
