package imapd_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/imapd"
)

// panicLog records library log lines that report a recovered panic.
type panicLog struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.mu.Lock()
		p.panics = append(p.panics, r.Message)
		p.mu.Unlock()
	}
	return nil
}
func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicLog) WithGroup(string) slog.Handler      { return p }

// states are the command prefixes that put a session in each state before
// the fuzzed lines arrive.
var states = []string{
	"",
	"a LOGIN anonymous x\r\n",
	"a LOGIN anonymous x\r\nb SELECT dev@lists.example.org\r\n",
	"a LOGIN carol@example.com sesame\r\nb EXAMINE secret@lists.example.org\r\n",
	// The fixture's posts are archived now: this year's view holds them.
	"a LOGIN anonymous x\r\nb SELECT dev@lists.example.org/" + strconv.Itoa(time.Now().UTC().Year()) + "\r\n",
	"a AUTHENTICATE ANONYMOUS\r\n\r\nb SELECT INBOX\r\n",
}

// FuzzSession drives sessions in several states with fuzzed command lines.
// Invariants: no panic, nothing written to the database, and the server
// still answers a fresh connection.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"c FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])\r\n",
		"c UID FETCH 2 (BODY[1.MIME] BINARY.PEEK[1] BINARY.SIZE[1] BODY[]<0.10>)\r\n",
		"c SEARCH OR BODY zebra NOT SUBJECT x SINCE 1-Jan-2020 LARGER 10\r\n",
		"c UID SEARCH RETURN (MIN MAX COUNT SAVE) HEADER X-Foo \"\"\r\nd FETCH $ (UID)\r\n",
		"c STORE 1:* +FLAGS (\\Seen)\r\nd SEARCH SEEN\r\n",
		"c APPEND dev@lists.example.org {5+}\r\nhello\r\n",
		"c STATUS dev@lists.example.org (MESSAGES UIDNEXT UNSEEN RECENT SIZE DELETED)\r\n",
		"c LIST \"\" \"*\" RETURN (STATUS (MESSAGES))\r\n",
		"c COPY 1 INBOX\r\nd EXPUNGE\r\ne RENAME dev@lists.example.org x\r\n",
		"c IDLE\r\nDONE\r\n",
	} {
		for i := range states {
			f.Add(uint8(i), seed)
		}
	}
	fx := newFixture(f)
	logs := &panicLog{}
	srv := imapd.New(imapd.Options{DB: fx.db, Log: slog.New(logs), PollInterval: 20 * time.Millisecond, FailedLoginDelay: time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Close() })
	before := archiveState(f, fx.db)

	f.Fuzz(func(t *testing.T, state uint8, lines string) {
		session(t, ln.Addr().String(), states[int(state)%len(states)]+lines+"\r\nz LOGOUT\r\n")
		logs.mu.Lock()
		panics := logs.panics
		logs.mu.Unlock()
		if len(panics) > 0 {
			t.Fatalf("server panicked: %v", panics)
		}
		if got := archiveState(t, fx.db); got != before {
			t.Fatalf("database changed: %s, want %s", got, before)
		}
		if out := session(t, ln.Addr().String(), "a CAPABILITY\r\nz LOGOUT\r\n"); !strings.Contains(out, "a OK") {
			t.Fatalf("server no longer answers: %q", out)
		}
	})
}

// session writes script and reads until the server closes or goes quiet.
func session(t *testing.T, addr, script string) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	go c.Write([]byte(script))
	var sb strings.Builder
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		sb.WriteString(line)
		if err != nil || strings.HasPrefix(line, "z ") {
			return sb.String()
		}
	}
}
